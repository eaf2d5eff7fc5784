-- wrk script for bench/triggers.sh: CNCF distribution notification envelopes, one push each, and every push sent
-- twice in a row (the second a different delivery of the same push: a duplicate the server must deduplicate).
local threads = {}
function setup(thread)
    thread:set("tid", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    counter = 0
    secret = os.getenv("HOOK_SECRET")
end

function request()
    local n = math.floor(counter / 2)
    counter = counter + 1
    local digest = string.format("sha256:%016x%016x%032x", tid, n, 0)
    local body = string.format(
        '{"events":[{"id":"d-%d-%d","timestamp":"2026-12-01T10:00:00Z","action":"push","target":{"mediaType":' ..
        '"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":500,"repository":"team/app","tag":"t%d-%d"},' ..
        '"request":{"host":"reg.example","method":"PUT"}}]}', tid, counter, digest, tid, n)
    return wrk.format("POST", "/api/v1/hooks/registry", {
        ["Authorization"] = "Bearer " .. secret,
        ["Content-Type"] = "application/vnd.docker.distribution.events.v2+json",
    }, body)
end

function done(summary, latency, requests)
    io.write(string.format("requests %d\n", summary.requests))
    io.write(string.format("errors %d\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
    io.write(string.format("p50_ms %.2f\np99_ms %.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
