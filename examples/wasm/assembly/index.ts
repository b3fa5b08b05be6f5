// A Firehose transform in AssemblyScript, built to a WebAssembly module for firehosed's `wasm`
// runtime (the WASM ABI of docs/transform.md): every record's data is base64-decoded, its ASCII
// letters upper-cased, base64-encoded again and answered Ok. A record whose data is not valid
// base64 is answered ProcessingFailed with its original data.
//
// The module exports memory, firehose_alloc and firehose_transform and imports only
// firehose.log. It works on raw bytes (load/store) rather than AssemblyScript strings, which
// are UTF-16: the request is scanned once, the response written once. firehosed uses a fresh
// instance per invocation, so the stub runtime (a bump allocator that never frees) is enough.

@external("firehose", "log")
declare function firehose_log(ptr: usize, len: i32): void;

function log(message: string): void {
  const utf8 = String.UTF8.encode(message);
  firehose_log(changetype<usize>(utf8), utf8.byteLength);
}

// Replaces AssemblyScript's `env.abort` import (see `--use abort=` in package.json): an
// assertion or a runtime error logs where it happened, then traps.
function firehoseAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  log("abort: " + (message !== null ? message : "") + " at " +
      (fileName !== null ? fileName : "") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

// ---- the ABI -------------------------------------------------------------------------------

export function firehose_alloc(len: i32): i32 {
  return <i32>heap.alloc(len > 0 ? <usize>len : 1);
}

export function firehose_transform(ptr: i32, len: i32): i64 {
  const req = <usize>ptr;
  const end = req + <usize>len;
  // Each answer is at most 2x the bytes of its record in the request, plus the envelope.
  const out = heap.alloc(<usize>len * 2 + 64);
  // Decoded data of one record, reused: no record is longer than the request.
  const scratch = heap.alloc(<usize>len + 1);
  let pos = putAscii(out, '{"records":[');
  let count = 0;
  let failed = 0;

  let p = skipWs(req, end);
  if (p >= end || load<u8>(p) != 0x7b) unreachable(); // {
  p++;
  while (true) {
    p = skipWs(p, end);
    if (p >= end) unreachable();
    let c = <u32>load<u8>(p);
    if (c == 0x7d) break; // }
    if (c == 0x2c) { p++; continue; } // ,
    const key = p + 1;
    p = skipString(p, end);
    const keyLen = p - 1 - key;
    p = expectColon(p, end);
    if (!(isKey(key, keyLen, "records") && load<u8>(p) == 0x5b)) { // [
      p = skipValue(p, end);
      continue;
    }
    p++;
    while (true) {
      p = skipWs(p, end);
      if (p >= end) unreachable();
      c = load<u8>(p);
      if (c == 0x5d) { p++; break; } // ]
      if (c == 0x2c) { p++; continue; }
      if (c != 0x7b) unreachable();
      p++;
      // one record: find recordId and data, whatever the order of the keys
      let rid: usize = 0, ridLen: usize = 0, data: usize = 0, dataLen: usize = 0;
      while (true) {
        p = skipWs(p, end);
        if (p >= end) unreachable();
        c = load<u8>(p);
        if (c == 0x7d) { p++; break; }
        if (c == 0x2c) { p++; continue; }
        const k = p + 1;
        p = skipString(p, end);
        const kLen = p - 1 - k;
        p = expectColon(p, end);
        if (load<u8>(p) == 0x22 && isKey(k, kLen, "recordId")) {
          rid = p + 1;
          p = skipString(p, end);
          ridLen = p - 1 - rid;
        } else if (load<u8>(p) == 0x22 && isKey(k, kLen, "data")) {
          data = p + 1;
          p = skipString(p, end);
          dataLen = p - 1 - data;
        } else {
          p = skipValue(p, end);
        }
      }
      if (count > 0) store<u8>(pos++, 0x2c);
      count++;
      pos = putAscii(pos, '{"recordId":"');
      memory.copy(pos, rid, ridLen);
      pos += ridLen;
      const n = base64Decode(data, dataLen, scratch);
      if (n < 0) {
        failed++;
        pos = putAscii(pos, '","result":"ProcessingFailed","data":"');
        memory.copy(pos, data, dataLen);
        pos += dataLen;
      } else {
        upperCase(scratch, <usize>n);
        pos = putAscii(pos, '","result":"Ok","data":"');
        pos = base64Encode(scratch, <usize>n, pos);
      }
      pos = putAscii(pos, '"}');
    }
  }
  pos = putAscii(pos, "]}");
  log("uppercase: " + count.toString() + " records, " + failed.toString() + " not base64");
  return (<i64>out << 32) | <i64>(pos - out);
}

// ---- the work ------------------------------------------------------------------------------

function upperCase(p: usize, n: usize): void {
  for (let i: usize = 0; i < n; i++) {
    const c = load<u8>(p + i);
    if (c >= 0x61 && c <= 0x7a) store<u8>(p + i, c - 0x20);
  }
}

// "A".."Z", "a".."z", "0".."9", "+", "/"
const B64_CHARS = memory.data<u8>([
  65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 97, 98, 99, 100, 101, 102,
  103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 43, 47,
]);
// the value of each byte as a base64 digit, 255 for a byte that is not one
const B64_VALUES = memory.data<u8>([
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 62, 255, 255, 255, 63, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 255, 255, 255, 255, 255, 255,
  255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 255, 255, 255, 255, 255,
  255, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
]);

@inline function b64Char(v: u32): u8 {
  return load<u8>(B64_CHARS + <usize>v);
}

// Decodes the JSON string content [src, src+n) (base64, possibly with "\/" escapes) into dst;
// returns the length, or -1 when it is not base64.
function base64Decode(src: usize, n: usize, dst: usize): i32 {
  let acc: u32 = 0, bits: u32 = 0, out: usize = 0, chars: u32 = 0, pad: u32 = 0;
  for (let i: usize = 0; i < n; i++) {
    let c = <u32>load<u8>(src + i);
    if (c == 0x5c) { // \ : only \/ can appear in base64
      if (i + 1 >= n || load<u8>(src + i + 1) != 0x2f) return -1;
      i++;
      c = 0x2f;
    }
    if (c == 0x3d) { pad++; chars++; continue; } // =
    if (pad > 0) return -1; // data after padding
    const v = <u32>load<u8>(B64_VALUES + <usize>c);
    if (v == 255) return -1;
    chars++;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(dst + out++, <u8>(acc >> bits));
    }
  }
  if (pad > 2 || (pad > 0 && (chars & 3) != 0) || (chars & 3) == 1) return -1;
  return <i32>out;
}

// Writes the padded base64 of [src, src+n) at dst; returns the end.
function base64Encode(src: usize, n: usize, dst: usize): usize {
  let i: usize = 0;
  while (i + 3 <= n) {
    const v = (<u32>load<u8>(src + i) << 16) | (<u32>load<u8>(src + i + 1) << 8) | <u32>load<u8>(src + i + 2);
    store<u8>(dst, b64Char(v >> 18));
    store<u8>(dst + 1, b64Char((v >> 12) & 63));
    store<u8>(dst + 2, b64Char((v >> 6) & 63));
    store<u8>(dst + 3, b64Char(v & 63));
    dst += 4;
    i += 3;
  }
  const rest = n - i;
  if (rest == 1) {
    const v = <u32>load<u8>(src + i) << 16;
    store<u8>(dst, b64Char(v >> 18));
    store<u8>(dst + 1, b64Char((v >> 12) & 63));
    store<u8>(dst + 2, 0x3d);
    store<u8>(dst + 3, 0x3d);
    dst += 4;
  } else if (rest == 2) {
    const v = (<u32>load<u8>(src + i) << 16) | (<u32>load<u8>(src + i + 1) << 8);
    store<u8>(dst, b64Char(v >> 18));
    store<u8>(dst + 1, b64Char((v >> 12) & 63));
    store<u8>(dst + 2, b64Char((v >> 6) & 63));
    store<u8>(dst + 3, 0x3d);
    dst += 4;
  }
  return dst;
}

// ---- a JSON scanner just large enough for the request ---------------------------------------

function skipWs(p: usize, end: usize): usize {
  while (p < end) {
    const c = load<u8>(p);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
    p++;
  }
  return p;
}

// p at the opening quote; returns the position after the closing quote.
function skipString(p: usize, end: usize): usize {
  p++;
  while (p < end) {
    const c = load<u8>(p);
    if (c == 0x22) return p + 1;
    p += c == 0x5c ? 2 : 1;
  }
  unreachable();
  return p;
}

// p after a key; returns the first byte of its value.
function expectColon(p: usize, end: usize): usize {
  p = skipWs(p, end);
  if (p >= end || load<u8>(p) != 0x3a) unreachable(); // :
  return skipWs(p + 1, end);
}

// p at the first byte of a value; returns the position after it.
function skipValue(p: usize, end: usize): usize {
  if (p >= end) unreachable();
  let c = load<u8>(p);
  if (c == 0x22) return skipString(p, end);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (p < end) {
      c = load<u8>(p);
      if (c == 0x22) { p = skipString(p, end); continue; }
      p++;
      if (c == 0x7b || c == 0x5b) depth++;
      else if (c == 0x7d || c == 0x5d) { if (--depth == 0) return p; }
    }
    unreachable();
  }
  while (p < end) { // number, true, false, null
    c = load<u8>(p);
    if (c == 0x2c || c == 0x7d || c == 0x5d || c <= 0x20) break;
    p++;
  }
  return p;
}

function isKey(p: usize, n: usize, key: string): bool {
  if (n != <usize>key.length) return false;
  for (let i = 0; i < key.length; i++) {
    if (<i32>load<u8>(p + <usize>i) != key.charCodeAt(i)) return false;
  }
  return true;
}

function putAscii(pos: usize, s: string): usize {
  for (let i = 0; i < s.length; i++) store<u8>(pos + <usize>i, <u8>s.charCodeAt(i));
  return pos + <usize>s.length;
}
