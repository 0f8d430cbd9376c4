// Reference provider for bench/token.sh: panva's oidc-provider (version pinned in
// package.json) issuing ES256-signed JWT access tokens with the client credentials grant.
//
//   node server.mjs [PORT]        (PORT 0 or absent: the kernel picks a free port)
//
// One node process, loopback only. One client (client_secret_basic, grant client_credentials,
// scope "read"), a fresh ES256 key in the provider's JWKS, and the resourceIndicators feature
// turning every client-credentials token into an ES256 JWT for one resource server (the
// issuer, like Warden's default audience). Once listening it prints one JSON line on stdout:
//   {"issuer": ..., "token_endpoint": ..., "client_id": ..., "client_secret": ...}
// and serves until SIGTERM/SIGINT. Client id and secret come from BENCH_PEER_CLIENT_ID /
// BENCH_PEER_CLIENT_SECRET, or are generated.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`peer: not a port: ${process.argv[2]}`);
  process.exit(2);
}

const clientId = process.env.BENCH_PEER_CLIENT_ID || randomBytes(16).toString('base64url');
const clientSecret = process.env.BENCH_PEER_CLIENT_SECRET || randomBytes(32).toString('base64url');

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid: 'bench-es256' };

// Bind first so the issuer can name the port the kernel picked.
const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  const issuer = `http://127.0.0.1:${bound}`;
  const resourceServer = {
    scope: 'read',
    audience: issuer,
    accessTokenTTL: 600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  };

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'read',
      // The only key is ES256; the default (RS256) would make the client invalid.
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [signingKey] },
    scopes: ['read'],
    // Not used by this grant; set so the provider does not warn about missing keys.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => issuer,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== issuer) {
            throw new Provider.errors.InvalidTarget();
          }
          return resourceServer;
        },
      },
    },
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({
    issuer,
    token_endpoint: `${issuer}/token`,
    client_id: clientId,
    client_secret: clientSecret,
  })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
