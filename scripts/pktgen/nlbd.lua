-- Pktgen-DPDK script for scripts/pktgen_bench.sh (SPEC §10): sets the traffic
-- toward nlbd's VIP on port 0, sends for a fixed time, stops, writes the
-- results to a file and quits pktgen (the memif client side), so that the
-- caller can then stop nlbd (the server side).
--
-- Parameters come from the environment (set by pktgen_bench.sh):
--   NLBD_PG_SECONDS  seconds of traffic          NLBD_PG_RATE   percent of line rate
--   NLBD_PG_SIZE     frame size (bytes)          NLBD_PG_FLOWS  source ports per source IP
--   NLBD_PG_PROTO    "udp" or "tcp"              NLBD_PG_VIP    destination IPv4 (the VIP)
--   NLBD_PG_DST_MAC  destination MAC (cluster MAC)
--   NLBD_PG_DPORT    destination port            NLBD_PG_RESULT results file (key=value lines)
-- Source addresses: 10.1.0.1 .. 10.1.0.16, source ports 1024 .. 1024+FLOWS-1.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end

local port    = "0"
local seconds = tonumber(env("NLBD_PG_SECONDS", "10"))
local rate    = tonumber(env("NLBD_PG_RATE", "100"))
local size    = tonumber(env("NLBD_PG_SIZE", "64"))
local flows   = tonumber(env("NLBD_PG_FLOWS", "256"))
local proto   = env("NLBD_PG_PROTO", "udp")
local vip     = env("NLBD_PG_VIP", "10.0.0.100")
local dst_mac = env("NLBD_PG_DST_MAC", "02:bf:0a:00:00:64")
local dport   = tonumber(env("NLBD_PG_DPORT", "53"))
local result  = env("NLBD_PG_RESULT", "pktgen_result.txt")

-- Traffic: range mode, many sources toward one VIP and port.
pktgen.set(port, "rate", rate)
pktgen.set(port, "size", size)
pktgen.set_proto(port, proto)
pktgen.range.dst_mac(port, "start", dst_mac)
pktgen.range.dst_ip(port, "start", vip)
pktgen.range.dst_ip(port, "inc", "0.0.0.0")
pktgen.range.dst_ip(port, "min", vip)
pktgen.range.dst_ip(port, "max", vip)
pktgen.range.src_ip(port, "start", "10.1.0.1")
pktgen.range.src_ip(port, "inc", "0.0.0.1")
pktgen.range.src_ip(port, "min", "10.1.0.1")
pktgen.range.src_ip(port, "max", "10.1.0.16")
pktgen.range.ip_proto(port, proto)
pktgen.range.dst_port(port, "start", dport)
pktgen.range.dst_port(port, "inc", 0)
pktgen.range.dst_port(port, "min", dport)
pktgen.range.dst_port(port, "max", dport)
pktgen.range.src_port(port, "start", 1024)
pktgen.range.src_port(port, "inc", 1)
pktgen.range.src_port(port, "min", 1024)
pktgen.range.src_port(port, "max", 1024 + flows - 1)
pktgen.range.pkt_size(port, "start", size)
pktgen.range.pkt_size(port, "inc", 0)
pktgen.range.pkt_size(port, "min", size)
pktgen.range.pkt_size(port, "max", size)
pktgen.set_range(port, "on")

pktgen.clr()
pktgen.delay(500)
pktgen.start(port)

-- Sample the rate once a second while sending; keep the peak and the sum.
local tx_pps_sum, rx_pps_sum, samples = 0, 0, 0
for _ = 1, seconds do
    pktgen.delay(1000)
    local ok, r = pcall(pktgen.portStats, port, "rate")
    if ok and r and r[0] then
        tx_pps_sum = tx_pps_sum + (r[0].pkts_tx or 0)
        rx_pps_sum = rx_pps_sum + (r[0].pkts_rx or 0)
        samples = samples + 1
    end
end

-- Shutdown order for memif: stop traffic first, let the rings drain.
pktgen.stop(port)
pktgen.delay(1000)

local opackets, ipackets, oerrors = -1, -1, -1
local ok, s = pcall(pktgen.portStats, port, "port")
if ok and s and s[0] then
    opackets = s[0].opackets or -1
    ipackets = s[0].ipackets or -1
    oerrors  = s[0].oerrors or -1
end

local f = io.open(result, "w")
if f then
    f:write(string.format("generator=pktgen\nseconds=%d\n", seconds))
    f:write(string.format("tx_packets=%d\nrx_packets=%d\ntx_errors=%d\n", opackets, ipackets, oerrors))
    if samples > 0 then
        f:write(string.format("tx_pps=%.0f\nrx_pps=%.0f\n", tx_pps_sum / samples, rx_pps_sum / samples))
    end
    f:close()
end

-- The client side exits; pktgen_bench.sh stops nlbd (the server) after this.
pktgen.quit()
