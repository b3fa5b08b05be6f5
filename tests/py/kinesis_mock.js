// Preloaded into kinesis-mock (npm kinesis-local): node -r kinesis_mock.js .../main.js.
// kinesis-mock binds 0.0.0.0 on the ports its environment names, with no way to choose the
// address: this moves every server it starts onto 127.0.0.1 and an ephemeral port. Start it
// with KINESIS_MOCK_TLS_PORT=1 and KINESIS_MOCK_PLAIN_PORT=2 (markers, never bound): it prints
// `tls-listening PORT` and `plain-listening PORT` with the ports bound for each.
const net = require('net');
const names = { 1: 'tls', 2: 'plain' };
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const server = this;
  const cb = args.find((a) => typeof a === 'function');
  let asked = 0;
  if (args[0] && typeof args[0] === 'object') asked = Number(args[0].port || 0);
  else if (typeof args[0] === 'number' || typeof args[0] === 'string') asked = Number(args[0]);
  const name = names[asked];
  const report = () => {
    if (name) console.log(name + '-listening ' + server.address().port);
    if (cb) cb();
  };
  return listen.call(server, { port: name ? 0 : asked, host: '127.0.0.1' }, report);
};
