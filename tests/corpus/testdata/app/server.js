// An HTTP server on $PORT (3000) that counts its hits in $DATA/hits.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const file = path.join(process.env.DATA || '/data', 'hits');
let hits = 0;
try { hits = parseInt(fs.readFileSync(file, 'utf8'), 10) || 0; } catch (e) { /* first run */ }

http.createServer((req, res) => {
  if (req.url === '/hit') {
    hits++;
    fs.writeFileSync(file, String(hits));
  }
  res.end(`hits=${hits} node=${process.version}\n`);
}).listen(parseInt(process.env.PORT || '3000', 10), () => {
  console.log(`listening on ${process.env.PORT || 3000}`);
});
