// Evaluates the shop workspace's flags (internal/server/helpers_test.go)
// with the OpenFeature JS server SDK and its OFREP provider against the
// envplane server at ENVPLANE_URL, authenticating with the sdk key in
// ENVPLANE_KEY as X-API-Key, and prints what it got as one JSON object.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const provider = new OFREPProvider({
  baseUrl: process.env.ENVPLANE_URL,
  headers: { 'X-API-Key': process.env.ENVPLANE_KEY },
});
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
const ann = { targetingKey: 'ann', email: 'ann@example.com' };
const pick = (d) => ({
  value: d.value,
  variant: d.variant ?? '',
  reason: d.reason ?? '',
  errorCode: d.errorCode ?? '',
});
const out = {
  boolean: pick(await client.getBooleanDetails('new-checkout', false, ann)),
  string: pick(await client.getStringDetails('banner', 'x', ann)),
  integer: pick(await client.getNumberDetails('page-size', 1, ann)),
  float: pick(await client.getNumberDetails('ratio', 0, ann)),
  object: pick(await client.getObjectDetails('theme', {}, ann)),
  disabled: pick(await client.getBooleanDetails('retired', true, ann)),
  missing: pick(await client.getBooleanDetails('nope', true, ann)),
  mismatch: pick(await client.getNumberDetails('banner', 3, ann)),
  noTargetingKey: pick(await client.getNumberDetails('page-size', 1, {})),
};
console.log(JSON.stringify(out));
await OpenFeature.close();
