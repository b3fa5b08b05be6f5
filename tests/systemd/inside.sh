#!/bin/bash
# Runs inside a Debian container booted by systemd-nspawn (tests/e2e/systemd.rs): systemd is PID 1.
# Installs the .deb of /firehosed-test, runs the service the way an operator would (enable
# --now, PUT, reload, a bad reload, stop) and writes what it saw to /results/facts as
# key=value lines; tests/e2e/systemd.rs checks them. The journal goes to /results/journal.
set -uo pipefail
exec >/results/log 2>&1
set -x
fact() { printf '%s=%s\n' "$1" "$2" >>/results/facts; }
api() { # api OPERATION JSON -> the response body
  curl -sS -X POST http://127.0.0.1:4573/ -H "X-Amz-Target: Firehose_20150804.$1" \
    -H 'Content-Type: application/x-amz-json-1.1' --data "$2"
}
b64() { printf '%s' "$1" | base64 -w0; }
: >/results/facts
systemctl start basic.target
fact boot "$(systemctl is-system-running)"

dpkg -i /firehosed-test/firehosed.deb
fact dpkg_rc $?
fact user "$(id -un firehosed) $(getent passwd firehosed | cut -d: -f6,7)"
fact unit_enabled_before "$(systemctl is-enabled firehosed)"

# The watchdog, shortened: without WATCHDOG=1 pings systemd kills it within 2 s.
mkdir -p /etc/systemd/system/firehosed.service.d
printf '[Service]\nWatchdogSec=2\n' >/etc/systemd/system/firehosed.service.d/watchdog.conf
systemctl daemon-reload

# The packaged configuration, as installed.
systemctl enable --now firehosed
fact start_rc $?
fact active "$(systemctl is-active firehosed)"
fact readyz "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:4573/readyz)"
api PutRecord "{\"DeliveryStreamName\":\"example\",\"Record\":{\"Data\":\"$(b64 $'packaged\n')\"}}"
curl -sS -X POST http://127.0.0.1:4573/v1/streams/example/flush
fact packaged_objects "$(find /var/lib/firehosed/out -name '*.gz' | wc -l)"
fact packaged_content "$(find /var/lib/firehosed/out -name '*.gz' -exec zcat {} + | tr '\n' ' ')"
fact owner "$(stat -c %U /var/lib/firehosed/spool)"

# Past the shortened watchdog several times over: still the first process.
pid=$(systemctl show -p MainPID --value firehosed)
sleep 7
fact watchdog_restarts "$(systemctl show -p NRestarts --value firehosed)"
fact same_pid "$([ "$pid" = "$(systemctl show -p MainPID --value firehosed)" ] && echo yes || echo no)"

# Reload onto a configuration with a WASM transform (wasmtime compiles under the unit's
# SystemCallFilter, NoNewPrivileges, ...), keeping the first stream.
install -m 0644 /firehosed-test/blueprint.wat /etc/firehosed/blueprint.wat
cat >>/etc/firehosed/firehosed.yaml <<'YAML'
  - name: wasm
    source: {direct_put: {}}
    processing:
      transform:
        wasm: {module: /etc/firehosed/blueprint.wat}
        buffer_interval_seconds: 0
    destinations:
      - directory: /var/lib/firehosed/wasm
        prefix: data/
        error_output_prefix: "errors/!{firehose:error-output-type}/"
        buffering: {size_mib: 5, interval_seconds: 60}
        compression: UNCOMPRESSED
YAML
systemctl reload firehosed
fact reload_rc $?
# ExecReload returns once the signal is sent; the daemon applies the file on its own.
# Listed once it is CREATING; it takes records once ACTIVE (the WASM module compiled).
for _ in $(seq 100); do
  api DescribeDeliveryStream '{"DeliveryStreamName":"wasm"}' | grep -q '"DeliveryStreamStatus":"ACTIVE"' && break
  sleep 0.1
done
fact streams_after_reload "$(api ListDeliveryStreams '{}' | tr -d ' \n')"
fact wasm_put "$(api PutRecordBatch "{\"DeliveryStreamName\":\"wasm\",\"Records\":[{\"Data\":\"$(b64 keep-1)\"},{\"Data\":\"$(b64 drop-2)\"},{\"Data\":\"$(b64 fail-3)\"}]}" | grep -o '"FailedPutCount":[0-9]*')"
curl -sS -X POST http://127.0.0.1:4573/v1/streams/wasm/flush
fact wasm_delivered "$(find /var/lib/firehosed/wasm/data -type f -exec cat {} + 2>/dev/null)"
fact wasm_failed "$(find /var/lib/firehosed/wasm/errors/processing-failed -type f -exec cat {} + 2>/dev/null | grep -o '"errorCode":"[^"]*"' | sort -u | tr '\n' ' ')"

# A broken file: ExecReload's validate refuses it, the running configuration stays.
cp /etc/firehosed/firehosed.yaml /root/good.yaml
printf '  - name: broken\n    source: {direct_put: {}}\n    destinations: [{directory: /x, buffering: {size_mib: 500}}]\n' >>/etc/firehosed/firehosed.yaml
systemctl reload firehosed
fact bad_reload_rc $?
fact active_after_bad_reload "$(systemctl is-active firehosed)"
fact streams_after_bad_reload "$(api ListDeliveryStreams '{}' | tr -d ' \n')"
cp /root/good.yaml /etc/firehosed/firehosed.yaml

# kill -9: Restart=on-failure starts it again, and the record acknowledged before is delivered.
api PutRecord "{\"DeliveryStreamName\":\"example\",\"Record\":{\"Data\":\"$(b64 $'killed\n')\"}}"
pid=$(systemctl show -p MainPID --value firehosed)
systemctl kill -s KILL firehosed
for _ in $(seq 150); do
  now=$(systemctl show -p MainPID --value firehosed)
  [ "$now" != 0 ] && [ "$now" != "$pid" ] && [ "$(systemctl is-active firehosed)" = active ] && break
  sleep 0.1
done
fact restarted "$([ "$now" != "$pid" ] && systemctl is-active firehosed)"
fact restarts_after_kill "$(systemctl show -p NRestarts --value firehosed)"
curl -sS -X POST http://127.0.0.1:4573/v1/streams/example/flush
fact after_kill_content "$(find /var/lib/firehosed/out -name '*.gz' -exec zcat {} + | sort | tr '\n' ' ')"

# A record still buffered at stop is delivered by the drain.
api PutRecord "{\"DeliveryStreamName\":\"example\",\"Record\":{\"Data\":\"$(b64 $'drained\n')\"}}"
systemctl stop firehosed
fact stop_rc $?
fact stop_result "$(systemctl show -p Result --value firehosed)"
fact exit_status "$(systemctl show -p ExecMainStatus --value firehosed)"
fact drained_content "$(find /var/lib/firehosed/out -name '*.gz' -exec zcat {} + | sort | tr '\n' ' ')"
fact exposure "$(systemd-analyze security firehosed --no-pager 2>/dev/null | tail -n1)"
journalctl -u firehosed --no-pager -o cat >/results/journal
fact journal_lines "$(wc -l </results/journal)"
exit 0
