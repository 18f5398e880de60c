// A real OpenID provider for the auth service's `oidc` tests: panva/oidc-provider with
// one confidential client and a fixed table of accounts. Development interactions (a
// login form that takes any known account name, then a consent form) are automated by
// the tests with an HTTP client. Never used outside the tests.
//
//   node server.mjs <port> <redirect_uri> <client_id> <client_secret>
// prints "listening <issuer>" once it accepts connections.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

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
provider.proxy = false;

const server = provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
