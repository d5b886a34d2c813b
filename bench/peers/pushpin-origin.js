// The origin behind Pushpin for bench/compare.sh: GET /stream/CHANNEL answers an empty
// text/event-stream with GRIP headers, so Pushpin holds the stream open on CHANNEL and writes
// whatever is published to it. Usage: node pushpin-origin.js PORT (listens on 127.0.0.1).
'use strict';
const http = require('http');
const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  const m = /^\/stream\/([A-Za-z0-9_.:@~-]+)$/.exec(req.url);
  if (req.method !== 'GET' || !m) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'Grip-Hold': 'stream',
    'Grip-Channel': m[1],
    // A ":" comment after 15 s without data, like ssegw's heartbeat and Nchan's ping.
    'Grip-Keep-Alive': ':\\n\\n; format=cstring; timeout=15',
  });
  res.end();
});
server.keepAliveTimeout = 300000;
server.listen(port, '127.0.0.1', () => console.error(`pushpin origin listening on ${port}`));
