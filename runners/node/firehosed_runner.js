#!/usr/bin/env node
// Hosts an unmodified Firehose data-transformation Lambda handler for firehosed.
//
//     node firehosed_runner.js FILE.EXPORT      (e.g. index.handler, lib/index.handler)
//
// Speaks the subprocess protocol of docs/transform.md: one request event per line on stdin, one
// response per line on stdout (the handler's result, or {"errorMessage","errorType","stackTrace"}
// when it failed), strictly one request at a time. console.* and process.stdout.write go to
// stderr, hence to firehosed's log. Exits 0 at end of file on stdin (after the request in
// progress), 2 when the handler cannot be loaded. Node.js 18+, no dependencies.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const util = require('util');
const crypto = require('crypto');
const { pathToFileURL } = require('url');

const PROTOCOL_FD = 1;

// ---- the protocol owns fd 1: everything else written to stdout goes to stderr -------------
const stderrWrite = process.stderr.write.bind(process.stderr);
process.stdout.write = function write(chunk, encoding, cb) {
  return stderrWrite(chunk, encoding, cb);
};
let currentRequestId = null;
for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[level] = (...args) => {
    let text = util.format(...args);
    if (level === 'trace') text = 'Trace: ' + text + '\n' + new Error().stack.split('\n').slice(2).join('\n');
    stderrWrite(text + '\n');
  };
}
console.dir = (obj, options) => stderrWrite(util.inspect(obj, options) + '\n');

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function writeLine(text) {
  const buf = Buffer.from(text + '\n', 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(PROTOCOL_FD, buf, off, buf.length - off);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(sleepCell, 0, 0, 1); // a non-blocking pipe that is full: wait 1 ms
    }
  }
}

// ---- loading the handler -----------------------------------------------------------------
class LoadError extends Error {}

function splitHandler(spec) {
  // Like the Lambda runtime: the module is everything before the first dot of the last path
  // segment; the rest is the export, possibly nested (index.handlers.transform).
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === spec.length - 1) {
    throw new LoadError(`bad handler "${spec}": expected FILE.EXPORT, e.g. index.handler`);
  }
  return [spec.slice(0, dot), spec.slice(dot + 1)];
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch (_) {
    return false;
  }
}

async function loadModule(base) {
  let file = ['.js', '.mjs', '.cjs', ''].map((ext) => base + ext).find(isFile);
  if (file === undefined) file = require.resolve(base); // a directory with index.js or package.json
  if (file.endsWith('.mjs')) return import(pathToFileURL(file).href);
  try {
    return require(file);
  } catch (err) {
    if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return import(pathToFileURL(file).href);
    }
    throw err;
  }
}

async function loadHandler(spec) {
  const [modulePath, exportPath] = splitHandler(spec);
  const mod = await loadModule(path.resolve(process.cwd(), modulePath));
  let handler = mod;
  for (const name of exportPath.split('.')) {
    handler = handler == null ? undefined : handler[name];
  }
  if (typeof handler !== 'function' && mod && mod.default && typeof mod.default === 'object') {
    // an ES module importing CommonJS, or `export default {handler}`
    handler = mod.default;
    for (const name of exportPath.split('.')) handler = handler == null ? undefined : handler[name];
  }
  if (typeof handler !== 'function') {
    throw new LoadError(`${modulePath} has no exported function "${exportPath}"`);
  }
  return handler;
}

// ---- one invocation ----------------------------------------------------------------------
const timeoutMs = parseInt(process.env.FIREHOSED_TIMEOUT_MS || '60000', 10) || 60000;
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME || '';
const functionVersion = process.env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST';
const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
const logStreamName = `${day}/[${functionVersion}]${crypto.randomBytes(16).toString('hex')}`;

function makeContext(requestId, deadline, finish) {
  return {
    functionName,
    functionVersion,
    invokedFunctionArn: process.env.FIREHOSED_FUNCTION_ARN || '',
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '128',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName,
    identity: undefined,
    clientContext: undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    // the legacy context methods
    succeed: (result) => finish(null, result),
    fail: (err) => finish(err == null ? new Error('handled') : err),
    done: (err, result) => finish(err, result),
  };
}

function errorLine(err, errorType) {
  let message;
  let type;
  let stack = [];
  if (err instanceof Error) {
    type = errorType || err.name || 'Error';
    message = err.message;
    if (!errorType && typeof err.stack === 'string') {
      stack = err.stack.split('\n').slice(1).map((s) => s.trim()).filter((s) => s.startsWith('at '));
    }
  } else {
    type = errorType || typeof err;
    message = typeof err === 'string' ? err : safeStringify(err);
  }
  return JSON.stringify({ errorMessage: String(message), errorType: type, stackTrace: stack });
}

function safeStringify(value) {
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s;
  } catch (_) {
    return String(value);
  }
}

function logError(err, prefix) {
  const text = err instanceof Error ? err.stack || String(err) : util.inspect(err);
  stderrWrite(`[ERROR] ${prefix || ''}${text}\n`);
}

let inFlight = null; // {finish} of the invocation in progress

// Runs one request; resolves with the line to answer.
function invoke(handler, line) {
  return new Promise((resolve) => {
    const started = Date.now();
    let event;
    try {
      event = JSON.parse(line);
    } catch (err) {
      logError(err, 'could not parse the request: ');
      resolve(errorLine(new Error(`Unable to unmarshal input: ${err.message}`), 'Runtime.UnmarshalError'));
      return;
    }
    const requestId = event && typeof event === 'object' ? String(event.invocationId || '') : '';
    let done = false;
    const finish = (err, result) => {
      if (done) return;
      done = true;
      inFlight = null;
      currentRequestId = null;
      if (err !== null && err !== undefined) {
        logError(err);
        resolve(errorLine(err));
        return;
      }
      let text;
      try {
        text = JSON.stringify(result === undefined ? null : result);
      } catch (e) {
        logError(e, 'could not serialize the result: ');
        resolve(errorLine(new Error(`Unable to stringify response body: ${e.message}`), 'Runtime.MarshalError'));
        return;
      }
      resolve(text);
    };
    inFlight = { finish };
    currentRequestId = requestId;
    const context = makeContext(requestId, started + timeoutMs, finish);
    const callback = (err, result) => finish(err, result);
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (err) {
      finish(err);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => finish(null, result), (err) => finish(err == null ? new Error(String(err)) : err));
    } else if (handler.length < 3) {
      finish(null, returned); // a plain synchronous handler
    } // else: wait for the callback
  });
}

// An error nobody caught while an invocation runs fails that invocation (the runner stays up).
function onStray(kind) {
  return (err) => {
    if (inFlight) {
      inFlight.finish(err == null ? new Error(kind) : err);
    } else {
      logError(err, `${kind} outside an invocation: `);
    }
  };
}

// ---- main loop ---------------------------------------------------------------------------
async function main() {
  const spec = process.argv[2];
  if (!spec || process.argv.length !== 3 || spec === '-h' || spec === '--help') {
    stderrWrite('usage: node firehosed_runner.js FILE.EXPORT\n');
    process.exit(2);
  }
  if (!process.env._HANDLER) process.env._HANDLER = spec;
  let handler;
  try {
    handler = await loadHandler(spec);
  } catch (err) {
    const reason = err instanceof LoadError || (err && err.code === 'MODULE_NOT_FOUND') ? err.message.split('\n')[0]
      : (err && err.stack) || String(err);
    stderrWrite(`firehosed_runner: cannot load handler "${spec}" (cwd ${process.cwd()}): ${reason}\n`);
    process.exit(2);
  }
  process.on('uncaughtException', onStray('uncaught exception'));
  process.on('unhandledRejection', onStray('unhandled promise rejection'));

  const queue = [];
  let ended = false;
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      const line = queue.shift();
      const answer = await invoke(handler, line);
      try {
        writeLine(answer);
      } catch (err) {
        if (err.code === 'EPIPE') process.exit(0); // firehosed went away
        throw err;
      }
    }
    busy = false;
    if (ended) process.exit(0);
  };
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    queue.push(line);
    pump();
  });
  rl.on('close', () => {
    ended = true;
    if (!busy) process.exit(0);
  });
}

main();
