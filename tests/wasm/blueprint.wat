;; Firehose transform (WASM ABI of docs/transform.md) with the decisions of blueprint.py, taken
;; on the base64 data without decoding it, for records whose text is keep-<n>, drop-<n> or
;; fail-<n>: data starting with a2VlcC ("keep") -> Ok, data unchanged, partitionKeys
;; {"action":"keep"}; ZHJvcC ("drop") -> Dropped; anything else, ZmFpbC ("fail") included ->
;; ProcessingFailed. Logs one line per invocation through firehose.log. The request is parsed
;; with a small JSON scanner that walks members by key (key order does not matter).
(module
  (import "firehose" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  ;; bump allocator: the heap starts after the constant strings
  (global $heap (mut i32) (i32.const 1024))

  (data (i32.const 16) "records")                 ;; 7
  (data (i32.const 32) "recordId")                ;; 8
  (data (i32.const 48) "data")                    ;; 4
  (data (i32.const 64) "{\"records\":[")          ;; 12
  (data (i32.const 80) "{\"recordId\":\"")        ;; 13
  (data (i32.const 96) "\",\"result\":\"Ok\",\"data\":\"") ;; 24
  (data (i32.const 128) "\"}")                    ;; 2
  (data (i32.const 136) "]}")                     ;; 2
  (data (i32.const 144) "\",\"result\":\"Dropped\",\"data\":\"\"}")             ;; 31
  (data (i32.const 192) "\",\"result\":\"ProcessingFailed\",\"data\":\"")        ;; 38
  (data (i32.const 256) "\",\"metadata\":{\"partitionKeys\":{\"action\":\"keep\"}}}") ;; 49
  (data (i32.const 320) "a2VlcC")                 ;; base64 of "keep" + 2 bits
  (data (i32.const 328) "ZHJvcC")                 ;; "drop"
  (data (i32.const 336) "ZmFpbC")                 ;; "fail"
  (data (i32.const 352) "blueprint.wat: ")        ;; 15
  (data (i32.const 368) " records")               ;; 8
  ;; 512..576: the log line

  ;; makes [0, end) addressable, growing the memory; traps when it cannot
  (func $ensure (param $end i32)
    (local $have i32)
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u
                (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                (i32.const 16)))
              (i32.const -1))
          (then unreachable)))))

  (func $firehose_alloc (export "firehose_alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (call $ensure (i32.add (local.get $ptr) (local.get $len)))
    (global.set $heap (i32.add (local.get $ptr) (local.get $len)))
    (local.get $ptr))

  ;; ---- JSON scanning; p is a pointer, end the end of the request --------------------------
  (func $skip_ws (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.and
          (i32.and (i32.ne (local.get $c) (i32.const 32)) (i32.ne (local.get $c) (i32.const 9)))
          (i32.and (i32.ne (local.get $c) (i32.const 10)) (i32.ne (local.get $c) (i32.const 13)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $p))

  ;; p at the opening quote; returns the position after the closing quote
  (func $skip_string (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (loop $next
      (if (i32.ge_u (local.get $p) (local.get $end)) (then unreachable))
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.eq (local.get $c) (i32.const 34)) ;; "
        (then (return (i32.add (local.get $p) (i32.const 1)))))
      (local.set $p (i32.add (local.get $p)
        (select (i32.const 2) (i32.const 1) (i32.eq (local.get $c) (i32.const 92))))) ;; \
      (br $next))
    unreachable)

  ;; p at the first byte of a value; returns the position after it
  (func $skip_value (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (local $depth i32)
    (if (i32.ge_u (local.get $p) (local.get $end)) (then unreachable))
    (local.set $c (i32.load8_u (local.get $p)))
    (if (i32.eq (local.get $c) (i32.const 34))
      (then (return (call $skip_string (local.get $p) (local.get $end)))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91))) ;; { [
      (then
        (loop $next
          (if (i32.ge_u (local.get $p) (local.get $end)) (then unreachable))
          (local.set $c (i32.load8_u (local.get $p)))
          (if (i32.eq (local.get $c) (i32.const 34))
            (then
              (local.set $p (call $skip_string (local.get $p) (local.get $end)))
              (br $next)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
            (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
          (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
            (then
              (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
              (if (i32.eqz (local.get $depth)) (then (return (local.get $p))))))
          (br $next))))
    ;; a number, true, false or null
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.or (i32.or (i32.eq (local.get $c) (i32.const 44)) (i32.eq (local.get $c) (i32.const 125)))
                             (i32.or (i32.eq (local.get $c) (i32.const 93)) (i32.le_u (local.get $c) (i32.const 32)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $p))

  ;; the bytes at [a, a+alen) equal the bytes at [b, b+blen)
  (func $eq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; copies [src, src+len) to pos; returns pos+len
  (func $put (param $pos i32) (param $src i32) (param $len i32) (result i32)
    (memory.copy (local.get $pos) (local.get $src) (local.get $len))
    (i32.add (local.get $pos) (local.get $len)))

  ;; the 6 bytes at [data, data+len) are the 6 bytes at lit
  (func $starts (param $data i32) (param $len i32) (param $lit i32) (result i32)
    (if (i32.lt_u (local.get $len) (i32.const 6)) (then (return (i32.const 0))))
    (call $eq (local.get $data) (i32.const 6) (local.get $lit) (i32.const 6)))

  ;; logs "blueprint.wat: <n> records"
  (func $log_count (param $n i32)
    (local $digits i32) (local $v i32) (local $p i32)
    (memory.copy (i32.const 512) (i32.const 352) (i32.const 15))
    ;; count the digits, then write them backwards
    (local.set $v (local.get $n))
    (loop $count
      (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $count (i32.ne (local.get $v) (i32.const 0))))
    (local.set $p (i32.add (i32.const 527) (local.get $digits)))
    (local.set $v (local.get $n))
    (loop $write
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $write (i32.ne (local.get $v) (i32.const 0))))
    (memory.copy (i32.add (i32.const 527) (local.get $digits)) (i32.const 368) (i32.const 8))
    (call $log (i32.const 512) (i32.add (i32.const 23) (local.get $digits))))

  (func $firehose_transform (export "firehose_transform") (param $req i32) (param $len i32) (result i64)
    (local $end i32) (local $p i32) (local $c i32)
    (local $key i32) (local $keylen i32)
    (local $rid i32) (local $ridlen i32) (local $data i32) (local $datalen i32)
    (local $out i32) (local $pos i32) (local $first i32) (local $count i32)
    (local.set $end (i32.add (local.get $req) (local.get $len)))
    (local.set $out (call $firehose_alloc (i32.const 0)))
    (call $ensure (i32.add (local.get $out) (i32.const 64)))
    (local.set $pos (call $put (local.get $out) (i32.const 64) (i32.const 12)))
    (local.set $first (i32.const 1))

    ;; the top-level object: find "records"
    (local.set $p (call $skip_ws (local.get $req) (local.get $end)))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 123)) (then unreachable))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (block $top_done
      (loop $member
        (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
        (br_if $top_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $top_done (i32.eq (local.get $c) (i32.const 125)))
        (if (i32.eq (local.get $c) (i32.const 44))
          (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $member)))
        (if (i32.ne (local.get $c) (i32.const 34)) (then unreachable))
        (local.set $key (i32.add (local.get $p) (i32.const 1)))
        (local.set $p (call $skip_string (local.get $p) (local.get $end)))
        (local.set $keylen (i32.sub (i32.sub (local.get $p) (i32.const 1)) (local.get $key)))
        (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
        (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)) (then unreachable)) ;; :
        (local.set $p (call $skip_ws (i32.add (local.get $p) (i32.const 1)) (local.get $end)))
        (if (i32.and (call $eq (local.get $key) (local.get $keylen) (i32.const 16) (i32.const 7))
                     (i32.eq (i32.load8_u (local.get $p)) (i32.const 91)))
          (then
            ;; the records array
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (block $array_done
              (loop $element
                (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
                (if (i32.ge_u (local.get $p) (local.get $end)) (then unreachable))
                (local.set $c (i32.load8_u (local.get $p)))
                (if (i32.eq (local.get $c) (i32.const 93))
                  (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $array_done)))
                (if (i32.eq (local.get $c) (i32.const 44))
                  (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $element)))
                (if (i32.ne (local.get $c) (i32.const 123)) (then unreachable))
                ;; one record object
                (local.set $rid (i32.const 0)) (local.set $ridlen (i32.const 0))
                (local.set $data (i32.const 0)) (local.set $datalen (i32.const 0))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (block $record_done
                  (loop $field
                    (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
                    (if (i32.ge_u (local.get $p) (local.get $end)) (then unreachable))
                    (local.set $c (i32.load8_u (local.get $p)))
                    (if (i32.eq (local.get $c) (i32.const 125))
                      (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $record_done)))
                    (if (i32.eq (local.get $c) (i32.const 44))
                      (then (local.set $p (i32.add (local.get $p) (i32.const 1))) (br $field)))
                    (if (i32.ne (local.get $c) (i32.const 34)) (then unreachable))
                    (local.set $key (i32.add (local.get $p) (i32.const 1)))
                    (local.set $p (call $skip_string (local.get $p) (local.get $end)))
                    (local.set $keylen (i32.sub (i32.sub (local.get $p) (i32.const 1)) (local.get $key)))
                    (local.set $p (call $skip_ws (local.get $p) (local.get $end)))
                    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)) (then unreachable))
                    (local.set $p (call $skip_ws (i32.add (local.get $p) (i32.const 1)) (local.get $end)))
                    (local.set $c (i32.load8_u (local.get $p)))
                    (if (i32.and (i32.eq (local.get $c) (i32.const 34))
                                 (call $eq (local.get $key) (local.get $keylen) (i32.const 32) (i32.const 8)))
                      (then
                        (local.set $rid (i32.add (local.get $p) (i32.const 1)))
                        (local.set $p (call $skip_string (local.get $p) (local.get $end)))
                        (local.set $ridlen (i32.sub (i32.sub (local.get $p) (i32.const 1)) (local.get $rid)))
                        (br $field)))
                    (if (i32.and (i32.eq (local.get $c) (i32.const 34))
                                 (call $eq (local.get $key) (local.get $keylen) (i32.const 48) (i32.const 4)))
                      (then
                        (local.set $data (i32.add (local.get $p) (i32.const 1)))
                        (local.set $p (call $skip_string (local.get $p) (local.get $end)))
                        (local.set $datalen (i32.sub (i32.sub (local.get $p) (i32.const 1)) (local.get $data)))
                        (br $field)))
                    (local.set $p (call $skip_value (local.get $p) (local.get $end)))
                    (br $field)))
                ;; answer it
                (local.set $count (i32.add (local.get $count) (i32.const 1)))
                (call $ensure (i32.add (i32.add (local.get $pos) (i32.const 128))
                                       (i32.add (local.get $ridlen) (local.get $datalen))))
                (if (i32.eqz (local.get $first))
                  (then
                    (i32.store8 (local.get $pos) (i32.const 44))
                    (local.set $pos (i32.add (local.get $pos) (i32.const 1)))))
                (local.set $first (i32.const 0))
                (local.set $pos (call $put (local.get $pos) (i32.const 80) (i32.const 13)))
                (local.set $pos (call $put (local.get $pos) (local.get $rid) (local.get $ridlen)))
                (if (call $starts (local.get $data) (local.get $datalen) (i32.const 320))
                  (then ;; keep: {"recordId":"..","result":"Ok","data":"..","metadata":{..}}
                    (local.set $pos (call $put (local.get $pos) (i32.const 96) (i32.const 24)))
                    (local.set $pos (call $put (local.get $pos) (local.get $data) (local.get $datalen)))
                    (local.set $pos (call $put (local.get $pos) (i32.const 256) (i32.const 49))))
                  (else
                    (if (call $starts (local.get $data) (local.get $datalen) (i32.const 328))
                      (then ;; drop: {"recordId":"..","result":"Dropped","data":""}
                        (local.set $pos (call $put (local.get $pos) (i32.const 144) (i32.const 31))))
                      (else ;; fail: {"recordId":"..","result":"ProcessingFailed","data":".."}
                        (local.set $pos (call $put (local.get $pos) (i32.const 192) (i32.const 38)))
                        (local.set $pos (call $put (local.get $pos) (local.get $data) (local.get $datalen)))
                        (local.set $pos (call $put (local.get $pos) (i32.const 128) (i32.const 2)))))))
                (br $element))))
          (else
            (local.set $p (call $skip_value (local.get $p) (local.get $end)))))
        (br $member)))

    (call $ensure (i32.add (local.get $pos) (i32.const 2)))
    (local.set $pos (call $put (local.get $pos) (i32.const 136) (i32.const 2)))
    (global.set $heap (local.get $pos))
    (call $log_count (local.get $count))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $pos) (local.get $out)))))
)
