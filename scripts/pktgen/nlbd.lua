-- Pktgen-DPDK script for scripts/pktgen_bench.sh (SPEC §10): sets the traffic
-- toward nlbd's VIP on port 0, sends for a fixed time, stops, writes the
-- results to a file, then waits (bounded) for the caller to stop the memif
-- server side (nlbd or testpmd) before pktgen, the memif client, goes. The
-- caller freezes pktgen (SIGSTOP, pid= in the results), stops the server and
-- then kills pktgen; if it cannot, it creates the release file and pktgen
-- quits by itself.
--
-- Parameters come from the environment (set by pktgen_bench.sh):
--   NLBD_PG_SECONDS  seconds of traffic          NLBD_PG_RATE   percent of the link speed
--   NLBD_PG_SIZE     frame size (bytes)          NLBD_PG_FLOWS  source ports per source IP
--   NLBD_PG_PROTO    "udp" or "tcp"              NLBD_PG_VIP    destination IPv4 (the VIP)
--   NLBD_PG_DST_MAC  destination MAC (cluster MAC)
--   NLBD_PG_DPORT    destination port            NLBD_PG_RESULT results file (key=value lines)
--   NLBD_PG_RELEASE  file the caller creates once the memif server is stopped;
--                    pktgen quits when it exists (at most NLBD_PG_RELEASE_WAIT
--                    seconds later, default 30); empty: quit at once
--   NLBD_PG_LATENCY  "1": latency packets on port 0 (every NLBD_PG_LAT_US
--                    microseconds, default 100), timed when they come back on
--                    port 1, sampled into NLBD_PG_LAT_FILE (nanoseconds, one
--                    a line, after a "Latency" header)
-- Source addresses: 10.1.0.1 .. 10.1.0.16, source ports 1024 .. 1024+FLOWS-1.
--
-- Only the pktgen.* functions built into the binary are used (no
-- `require "Pktgen"`: Pktgen.lua lives in pktgen's source tree, not beside the
-- binary, and nothing of it is needed here).
--
-- Errors: the whole body runs under xpcall. On any Lua error (a misspelt
-- pktgen.* call, a bad parameter) traffic is stopped, the results file gets
-- status=error and lua_error=<message>, the message goes to stderr, and the
-- run ends the same way as a normal one (above), so the caller never waits for
-- its timeout. The results file is written to a temporary name and
-- renamed, so a reader sees all of it or nothing; its last line is status=.

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end

local result       = env("NLBD_PG_RESULT", "pktgen_result.txt")
local release      = env("NLBD_PG_RELEASE", "")
local release_wait = tonumber(env("NLBD_PG_RELEASE_WAIT", "30")) or 30

-- pktgen's process id (first field of /proc/self/stat), for the caller: it
-- freezes pktgen before it stops the memif server (see pktgen_bench.sh).
local function own_pid()
    local f = io.open("/proc/self/stat", "r")
    if not f then return nil end
    local pid = f:read("n")
    f:close()
    return math.tointeger(pid)
end

-- write_result(lines): lines is a list of "key=value" strings, the last one
-- status=...; pid= is inserted before it.
local function write_result(lines)
    local pid = own_pid()
    if pid then table.insert(lines, #lines, "pid=" .. pid) end
    local tmp = result .. ".tmp"
    local f, err = io.open(tmp, "w")
    if not f then
        io.stderr:write("nlbd.lua: cannot write " .. tmp .. ": " .. tostring(err) .. "\n")
        return
    end
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    os.rename(tmp, result)
end

local function number_env(name, default)
    local s = env(name, default)
    local v = tonumber(s)
    if v == nil then error(string.format("%s=%q is not a number", name, s), 0) end
    return v
end

local function run()
    local port    = "0"
    local seconds = math.tointeger(number_env("NLBD_PG_SECONDS", "10")) or 10
    local rate    = number_env("NLBD_PG_RATE", "100")
    local size    = math.tointeger(number_env("NLBD_PG_SIZE", "64"))
    local flows   = math.tointeger(number_env("NLBD_PG_FLOWS", "256"))
    local proto   = env("NLBD_PG_PROTO", "udp")
    local vip     = env("NLBD_PG_VIP", "10.0.0.100")
    local dst_mac = env("NLBD_PG_DST_MAC", "02:bf:0a:00:00:64")
    local dport   = math.tointeger(number_env("NLBD_PG_DPORT", "53"))
    local latency = env("NLBD_PG_LATENCY", "0") == "1"
    local lat_us  = math.tointeger(number_env("NLBD_PG_LAT_US", "100"))
    local lat_file = env("NLBD_PG_LAT_FILE", result .. ".latency")

    -- No screen updates: nobody watches the terminal (it is a pty under
    -- script(1)) and the log stays readable.
    pktgen.screen("off")

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

    local samples_wanted = 0
    if latency then
        if pktgen.portCount() < 2 then
            error("NLBD_PG_LATENCY=1 needs a second port (the one the timed packets come back on)", 0)
        end
        -- The latency packet is a copy of the single-packet template (UDP,
        -- destination port 1028): give it the VIP's addresses so that nlbd
        -- accepts it and forwards it to its local port, i.e. pktgen's port 1.
        pktgen.set_mac(port, "dst", dst_mac)
        pktgen.set_ipaddr(port, "dst", vip)
        pktgen.set_ipaddr(port, "src", "10.1.0.1/24")
        pktgen.set_proto(port, "udp")
        pktgen.latency(port, "rate", lat_us)
        pktgen.latency("0-1", "enable")
        -- Port 1 records a sample of the round trips (simple sampler, at most
        -- 2000 a second and 50000 in all: pktgen's table holds 50108).
        local per_second = math.min(2000, math.floor(1000000 / lat_us))
        samples_wanted = math.min(50000, per_second * seconds)
        pktgen.latsampler_params("1", "simple", samples_wanted, per_second, lat_file)
        pktgen.latsampler("1", "on")
    end

    pktgen.clr()
    pktgen.delay(500)
    pktgen.start(port)

    -- Sample the rate once a second while sending.
    local tx_pps_sum, rx_pps_sum, samples = 0, 0, 0
    for _ = 1, seconds do
        pktgen.delay(1000)
        local r = pktgen.portStats(port, "rate")
        if r and r[0] then
            tx_pps_sum = tx_pps_sum + (r[0].pkts_tx or 0)
            rx_pps_sum = rx_pps_sum + (r[0].pkts_rx or 0)
            samples = samples + 1
        end
    end

    -- Shutdown order for memif: stop traffic first, let the rings drain.
    pktgen.stop(port)
    pktgen.delay(1000)

    local s = pktgen.portStats(port, "port")
    if not (s and s[0]) then error("pktgen.portStats returned no entry for port " .. port, 0) end
    local lines = {
        "generator=pktgen",
        string.format("seconds=%d", seconds),
        string.format("rate_pct=%s", tostring(rate)),
        string.format("tx_packets=%d", s[0].opackets or -1),
        string.format("rx_packets=%d", s[0].ipackets or -1),
        string.format("tx_errors=%d", s[0].oerrors or -1),
    }
    -- The link state pktgen computes its rate from, e.g. "<UP-100000-FD>".
    local okl, ls = pcall(pktgen.linkState, port)
    if okl and ls and ls[0] then lines[#lines + 1] = "link=" .. tostring(ls[0]) end
    if samples > 0 then
        lines[#lines + 1] = string.format("tx_pps=%.0f", tx_pps_sum / samples)
        lines[#lines + 1] = string.format("rx_pps=%.0f", rx_pps_sum / samples)
    end
    if latency then
        pktgen.latsampler("1", "off")   -- writes lat_file
        local p = pktgen.pktStats("1")
        local lat = p and p[1] and p[1].latency
        if lat then
            lines[#lines + 1] = string.format("latency_packets=%d", lat.num_pkts or -1)
            lines[#lines + 1] = string.format("latency_skipped=%d", lat.num_skipped or -1)
            lines[#lines + 1] = string.format("latency_min_us=%.2f", lat.min_us or -1)
            lines[#lines + 1] = string.format("latency_avg_us=%.2f", lat.avg_us or -1)
            lines[#lines + 1] = string.format("latency_max_us=%.2f", lat.max_us or -1)
        end
        local p1 = pktgen.portStats("1", "port")
        if p1 and p1[1] then
            lines[#lines + 1] = string.format("port1_rx_packets=%d", p1[1].ipackets or -1)
        end
        lines[#lines + 1] = "latency_file=" .. lat_file
    end
    lines[#lines + 1] = "status=done"
    write_result(lines)
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
    pcall(pktgen.stop, "all")
    local msg = tostring(err)
    io.stderr:write("nlbd.lua: error: " .. msg .. "\n")
    -- First line of the message (the traceback follows on the next lines).
    local first = msg:match("^[^\n]*")
    write_result({ "generator=pktgen", "lua_error=" .. first, "status=error" })
end

-- The caller stops the memif server, then creates the release file.
if release ~= "" then
    local waited = 0
    while waited < release_wait * 1000 do
        local f = io.open(release, "r")
        if f then f:close(); break end
        pktgen.delay(100)
        waited = waited + 100
    end
end
pktgen.quit()
