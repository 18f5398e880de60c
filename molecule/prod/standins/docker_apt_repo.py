"""A stand-in for Docker's apt repository (download.docker.com/linux/debian), for the `prod` scenario.

The test machines reach no download.docker.com. This builds a repository of the same
shape, signed with a key of its own, from Debian's own engine packages renamed to Docker's
package names, so that the docker role's repository code runs unchanged against it:
the key download and its fingerprint check, the deb822 source, `apt update`, the install
of `docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin`, the
removal of the conflicting distribution packages on every run, and the Compose floor.

    docker-ce             <- Debian's docker.io (dockerd, its systemd units)
    docker-ce-cli         <- Debian's docker-cli (trixie); bookworm's docker.io carries the CLI
    containerd.io         <- Debian's containerd and runc in one package, as Docker ships them
    docker-buildx-plugin  <- Debian's docker-buildx where the suite has it
    docker-compose-plugin <- the official Compose v2 binary (the Makefile's build/bin/docker-compose)

Each package conflicts with and replaces the Debian names it stands for (never depends on
them), like Docker's packages, so removing docker.io, containerd or runc is a no-op.

    python3 docker_apt_repo.py --out DIR --compose-bin FILE --suite bookworm=IMAGE --suite trixie=IMAGE

IMAGE is a Debian image of that suite with apt (the test hosts' image): the Debian
packages are downloaded inside it. The result: DIR/linux/debian/{dists,pool,gpg} and
DIR/repository.json (the key's fingerprint). Rebuilt only when its inputs change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ARCH = "amd64"
COMPONENT = "stable"
# Docker's package name <- the Debian packages whose files it carries.
RENAMES = {
    "docker.io": "docker-ce",
    "docker-cli": "docker-ce-cli",
    "containerd": "containerd.io",
    "runc": "containerd.io",
    "docker-buildx": "docker-buildx-plugin",
}
# What Docker's own packages recommend; Debian's extras (needrestart, cgroupfs-mount, ...) go.
DOCKER_RECOMMENDS = {"apparmor", "ca-certificates", "git", "pigz", "procps", "xz-utils", "docker-ce-cli"}
DOCKER_NAMES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)
SUFFIX = "+mcpgw1"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kwargs)


def inputs_hash(compose_bin: Path, suites: dict[str, str]) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(hashlib.sha256(compose_bin.read_bytes()).digest())
    digest.update(json.dumps(suites, sort_keys=True).encode())
    return digest.hexdigest()


def download(image: str, dest: Path) -> list[Path]:
    """Debian's packages of the suite, fetched inside an image of that suite."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = " ".join(RENAMES)
    script = (
        "set -e; apt-get update -qq >/dev/null; cd /out; "
        f"for p in {wanted}; do if apt-cache show $p >/dev/null 2>&1; then "
        "apt-get -o APT::Sandbox::User=root download -qq $p; fi; done; "
        f"chown -R {os.getuid()}:{os.getgid()} /out"
    )
    run("docker", "run", "--rm", "-v", f"{dest}:/out", image, "sh", "-c", script)
    return sorted(dest.glob("*.deb"))


def parse_control(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def format_control(fields: dict[str, str]) -> str:
    return "".join(f"{key}: {value}\n" for key, value in fields.items() if value != "")


def rewrite_relations(value: str, own: str) -> str:
    """Depends/Recommends with Debian's names replaced by Docker's, without self references."""
    out: list[str] = []
    for clause in (c.strip() for c in value.split(",") if c.strip()):
        alternatives = []
        for alternative in (a.strip() for a in clause.split("|")):
            name = re.split(r"[\s(:]", alternative, maxsplit=1)[0]
            if name in RENAMES:
                renamed = RENAMES[name]
                if renamed == own:
                    continue
                alternative = renamed  # versions differ from Debian's: drop the constraint
            alternatives.append(alternative)
        if alternatives and " | ".join(alternatives) not in out:
            out.append(" | ".join(alternatives))
    return ", ".join(out)


def build_package(name: str, sources: list[Path], work: Path, pool: Path, extra_depends: str = "") -> Path:
    """One package named `name` carrying the files of `sources` (Debian .debs)."""
    tree = work / name
    shutil.rmtree(tree, ignore_errors=True)
    first, *others = sources
    run("dpkg-deb", "-R", str(first), str(tree))
    for other in others:
        run("dpkg-deb", "-x", str(other), str(tree))
    control_file = tree / "DEBIAN" / "control"
    fields = parse_control(control_file.read_text())
    replaced = [
        parse_control(run("dpkg-deb", "-f", str(s), capture_output=True, text=True).stdout) for s in sources
    ]
    debian_names = [f["Package"] for f in replaced]
    fields["Package"] = name
    fields["Version"] = fields["Version"] + SUFFIX
    fields["Maintainer"] = "MCP gateway tests <tests@gateway.test>"
    depends = ", ".join(f.get("Depends", "") for f in replaced if f.get("Depends"))
    if extra_depends:
        depends = f"{depends}, {extra_depends}" if depends else extra_depends
    fields["Depends"] = rewrite_relations(depends, name)
    recommends = rewrite_relations(fields.get("Recommends", ""), name).split(", ")
    fields["Recommends"] = ", ".join(r for r in recommends if re.split(r"[\s(]", r)[0] in DOCKER_RECOMMENDS)
    fields.pop("Suggests", None)
    fields["Provides"] = ", ".join(f"{f['Package']} (= {f['Version']})" for f in replaced)
    fields["Conflicts"] = fields["Replaces"] = ", ".join(debian_names)
    fields.pop("Breaks", None)
    fields.pop("Built-Using", None)
    fields.pop("Static-Built-Using", None)
    fields["Description"] = (
        f"Stand-in for Docker's {name}, made of Debian's {', '.join(debian_names)}\n"
        " Tests of the MCP gateway only: the shape of download.docker.com's package."
    )
    control_file.write_text(format_control(fields))
    # md5sums describe the first package only: drop it rather than ship a wrong one.
    (tree / "DEBIAN" / "md5sums").unlink(missing_ok=True)
    target = pool / f"{name}_{fields['Version'].split(':')[-1]}_{ARCH}.deb"
    run("dpkg-deb", "--root-owner-group", "-Znone", "-b", str(tree), str(target), stdout=subprocess.DEVNULL)
    return target


def build_simple(
    name: str, version: str, description: str, files: dict[str, Path], work: Path, pool: Path
) -> Path:
    """A package of our own: `files` maps paths in the package to files on the controller."""
    tree = work / name
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "DEBIAN").mkdir(parents=True)
    for inside, source in files.items():
        target = tree / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        target.chmod(0o755)
    control = {
        "Package": name,
        "Version": version,
        "Architecture": ARCH,
        "Maintainer": "MCP gateway tests <tests@gateway.test>",
        "Section": "admin",
        "Priority": "optional",
        "Description": f"{description}\n Tests of the MCP gateway only.",
    }
    (tree / "DEBIAN" / "control").write_text(format_control(control))
    target = pool / f"{name}_{version}_{ARCH}.deb"
    run("dpkg-deb", "--root-owner-group", "-Znone", "-b", str(tree), str(target), stdout=subprocess.DEVNULL)
    return target


def compose_version(compose_bin: Path) -> str:
    out = run(str(compose_bin), "version", "--short", capture_output=True, text=True).stdout.strip()
    return out.lstrip("v")


def suite_packages(suite: str, image: str, compose_bin: Path, root: Path, work: Path) -> None:
    pool = root / "pool" / suite / COMPONENT
    pool.mkdir(parents=True, exist_ok=True)
    debs = {parse_control(run("dpkg-deb", "-f", str(d), capture_output=True, text=True).stdout)["Package"]: d
            for d in download(image, work / "debian" / suite)}  # fmt: skip
    missing = {"docker.io", "containerd", "runc"} - set(debs)
    if missing:
        raise SystemExit(f"{suite}: Debian has no {', '.join(sorted(missing))}")
    built = work / "built" / suite
    built.mkdir(parents=True, exist_ok=True)
    has_cli = "docker-cli" in debs
    build_package("docker-ce", [debs["docker.io"]], built, pool, "docker-ce-cli" if has_cli else "")
    if has_cli:
        build_package("docker-ce-cli", [debs["docker-cli"]], built, pool)
    else:
        # bookworm: docker.io itself carries the CLI.
        build_simple(
            "docker-ce-cli", "20.10" + SUFFIX, "Stand-in for Docker's docker-ce-cli", {}, built, pool
        )
    build_package("containerd.io", [debs["containerd"], debs["runc"]], built, pool)
    if "docker-buildx" in debs:
        build_package("docker-buildx-plugin", [debs["docker-buildx"]], built, pool)
    else:
        build_simple(
            "docker-buildx-plugin", "0.0" + SUFFIX, "Stand-in for Docker's buildx plugin", {}, built, pool
        )
    build_simple(
        "docker-compose-plugin",
        compose_version(compose_bin) + SUFFIX,
        "Stand-in for Docker's docker-compose-plugin: the official Compose v2 binary",
        {"/usr/libexec/docker/cli-plugins/docker-compose": compose_bin},
        built,
        pool,
    )


def index_and_sign(root: Path, suites: list[str], gnupghome: Path) -> None:
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    for suite in suites:
        dist = root / "dists" / suite
        binary = dist / COMPONENT / f"binary-{ARCH}"
        binary.mkdir(parents=True, exist_ok=True)
        packages = run(
            "apt-ftparchive", "packages", f"pool/{suite}", cwd=root, capture_output=True, text=True
        ).stdout
        (binary / "Packages").write_text(packages)
        run("gzip", "-kf9n", str(binary / "Packages"))
        release = run(
            "apt-ftparchive",
            "-o", "APT::FTPArchive::Release::Origin=Docker (stand-in)",
            "-o", "APT::FTPArchive::Release::Label=Docker CE (stand-in)",
            "-o", f"APT::FTPArchive::Release::Suite={suite}",
            "-o", f"APT::FTPArchive::Release::Codename={suite}",
            "-o", f"APT::FTPArchive::Release::Architectures={ARCH}",
            "-o", f"APT::FTPArchive::Release::Components={COMPONENT}",
            "release", ".", cwd=dist, capture_output=True, text=True,
        ).stdout  # fmt: skip
        (dist / "Release").write_text(release)
        for name in ("InRelease", "Release.gpg"):
            (dist / name).unlink(missing_ok=True)
        run(
            "gpg",
            "--batch",
            "--yes",
            "--clearsign",
            "-o",
            str(dist / "InRelease"),
            str(dist / "Release"),
            env=env,
        )
        run(
            "gpg", "--batch", "--yes", "-abs", "-o", str(dist / "Release.gpg"), str(dist / "Release"), env=env
        )


def make_key(gnupghome: Path, public_key: Path) -> str:
    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    run(
        "gpg", "--batch", "--passphrase", "", "--quick-gen-key",
        "MCP gateway test apt repository <apt@gateway.test>", "rsa3072", "sign", "never",
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    listing = run(
        "gpg", "--batch", "--with-colons", "--list-keys", env=env, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    armored = run("gpg", "--batch", "--armor", "--export", fingerprint, env=env, capture_output=True).stdout
    public_key.write_bytes(armored)
    return fingerprint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--compose-bin", required=True, type=Path)
    parser.add_argument("--suite", action="append", required=True, help="SUITE=IMAGE")
    args = parser.parse_args()
    suites = dict(item.split("=", 1) for item in args.suite)
    out: Path = args.out.resolve()
    summary_file = out / "repository.json"
    want = inputs_hash(args.compose_bin, suites)
    if summary_file.exists() and json.loads(summary_file.read_text()).get("inputs") == want:
        print(json.dumps({"changed": False, **json.loads(summary_file.read_text())}))
        return 0
    shutil.rmtree(out, ignore_errors=True)
    root = out / "linux" / "debian"
    root.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="apt-standin-") as tmp:
        work = Path(tmp)
        gnupghome = work / "gnupg"
        gnupghome.mkdir(mode=0o700)
        fingerprint = make_key(gnupghome, root / "gpg")
        for suite, image in suites.items():
            suite_packages(suite, image, args.compose_bin, root, work)
        index_and_sign(root, list(suites), gnupghome)
    summary = {"inputs": want, "fingerprint": fingerprint, "suites": sorted(suites), "packages": DOCKER_NAMES}
    summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"changed": True, **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
