// Bull Board's JSON API (@bull-board/api) for the queue `jobs` of REDIS_URL, on 127.0.0.1.
//
// The API needs a server adapter; bull-board's own (express, fastify, ...) are published at
// 9.10.1 and each requires @bull-board/api 9.10.1 exactly, so beside the pinned 9.10.2 they
// would bring a second copy of the API. This one, on node:http, is the whole contract of
// IServerAdapter that the JSON API uses: routes with `:params`, the request shape
// ({queues, uiConfig, query, params, body, headers}) and the error handler. The HTML UI is
// not served.
//
// Arguments: --port N (default 0: any free port). Prints {"port": N} once listening.
// SIGTERM or SIGINT: close the server and the queue, then exit 0.
'use strict';

const http = require('node:http');
const { parseArgs } = require('node:util');
const { Queue } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { QUEUE_NAME, connect } = require('./connection');

class NodeHttpAdapter {
  constructor() {
    this.routes = [];
    this.queues = null;
    this.uiConfig = {};
    this.errorHandler = null;
  }

  setQueues(queues) {
    this.queues = queues;
    return this;
  }

  setViewsPath() {
    return this;
  }

  setStaticPath() {
    return this;
  }

  setEntryRoute() {
    return this;
  }

  setUIConfig(config) {
    this.uiConfig = config;
    return this;
  }

  setErrorHandler(handler) {
    this.errorHandler = handler;
    return this;
  }

  setApiRoutes(routes) {
    for (const route of routes) {
      const methods = [route.method].flat().map((method) => method.toUpperCase());
      for (const path of [route.route].flat()) {
        // '/api/queues/:queueName/:jobId/retry' -> a pattern with named groups, in list order:
        // the first route that matches answers, as with express.
        const source = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, '(?<$1>[^/]+)');
        this.routes.push({ methods, pattern: new RegExp(`^${source}$`), handler: route.handler });
      }
    }
    return this;
  }

  async handle(req, res) {
    const url = new URL(req.url, 'http://localhost');
    const route = this.routes.find((r) => r.methods.includes(req.method) && r.pattern.test(url.pathname));
    let response;
    if (!route) {
      response = { status: 404, body: { error: `no route ${req.method} ${url.pathname}` } };
    } else {
      try {
        const params = Object.fromEntries(
          Object.entries(route.pattern.exec(url.pathname).groups || {}).map(([k, v]) => [k, decodeURIComponent(v)]),
        );
        response = await route.handler({
          queues: this.queues,
          uiConfig: this.uiConfig,
          query: Object.fromEntries(url.searchParams),
          params,
          body: await readJson(req),
          headers: req.headers,
        });
      } catch (err) {
        response = this.errorHandler(err);
      }
    }
    const status = response.status || 200;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(status === 204 ? undefined : JSON.stringify(response.body));
  }
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function main() {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const connection = connect();
  const queue = new Queue(QUEUE_NAME, { connection });
  const adapter = new NodeHttpAdapter();
  createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter: adapter });

  const server = http.createServer((req, res) => {
    adapter.handle(req, res).catch((err) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(err) }));
    });
  });
  server.listen(Number(values.port), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
  });

  let closing = false;
  const close = async () => {
    if (closing) {
      return;
    }
    closing = true;
    server.close();
    server.closeAllConnections();
    await queue.close();
    await connection.quit();
    process.exit(0);
  };
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
