// A real OpenID provider for the auth service's `oidc` tests: panva/oidc-provider with
// one confidential client and a fixed table of accounts. Development interactions (a
// login form that takes any known account name, then a consent form) are filled in by
// the unit tests with an HTTP client, and by the browser tests (Molecule) in Chromium,
// where it runs in a container behind the gateway's Traefik. Never used outside the tests.
//
//   node server.mjs <port> <redirect_uri> <client_id> <client_secret> [<issuer> <listen address>]
// prints "listening <issuer>" once it accepts connections. The issuer defaults to
// http://127.0.0.1:<port>; an https issuer means a TLS-terminating proxy in front.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId, clientSecret, issuerArg, listenAddress] = process.argv.slice(2);
const issuer = issuerArg || `http://127.0.0.1:${port}`;

// The accounts the tests sign in as: the devInteractions login form takes the key.
const accounts = {
  alice: { email: 'alice@example.org', email_verified: true, name: 'Alice Upstream', groups: ['staff'] },
  bob: { email: 'Bob@Example.org', email_verified: true, name: 'Bob Upstream', groups: [] },
  carol: { email: 'carol@example.org', email_verified: false, name: 'Carol Unverified', groups: [] },
  dave: { email: 'dave@example.org', email_verified: true, name: 'Dave Outsider', groups: ['visitors'] },
  erin: { email: 'erin@example.org', email_verified: true, name: 'Erin Engineer', groups: ['engineering', 'staff'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-key-not-secret'] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
// Behind Traefik, X-Forwarded-Proto says the browser spoke https (secure cookies).
provider.proxy = issuer.startsWith('https://');

const server = provider.listen(Number(port), listenAddress || '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
