// Starts kinesalite on 127.0.0.1 only (it has no host flag): node kinesalite.js PORT (0: any).
// Prints `listening PORT` with the port it bound.
const kinesalite = require('kinesalite');
const port = parseInt(process.argv[2], 10);
const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 });
server.listen(port, '127.0.0.1', (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log('listening ' + server.address().port);
});
