// Node.js contender: the http module responds to every request with the bytes
// of one file and a fixed Content-Type.
//
//   node node-server.js PORT BODY_FILE CONTENT_TYPE
'use strict';

const fs = require('fs');
const http = require('http');

const [port, bodyFile, contentType] = process.argv.slice(2);
if (!port || !bodyFile || !contentType) {
  console.error('usage: node node-server.js PORT BODY_FILE CONTENT_TYPE');
  process.exit(64);
}
const body = fs.readFileSync(bodyFile);
const headers = { 'Content-Type': contentType, 'Content-Length': body.length };

const server = http.createServer((request, response) => {
  response.writeHead(200, headers);
  response.end(body);
});
// Keep idle keep-alive connections open between benchmark runs.
server.keepAliveTimeout = 600 * 1000;
server.headersTimeout = 601 * 1000;
server.requestTimeout = 0;
server.listen({ port: Number(port), host: '127.0.0.1', backlog: 4096 }, () => {
  console.error(`node: listening on 127.0.0.1:${port}`);
});
