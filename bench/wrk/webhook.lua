-- wrk script for `make bench`: signed GitHub deliveries, each with its own
-- X-GitHub-Delivery, so every request stores a new event (and queues its job).
-- The body is fixed, so its HMAC (X-Hub-Signature-256) is computed once by
-- the caller; the event id comes from the header, which is not signed.
--   wrk ... -s webhook.lua URL -- BODY_FILE SIGNATURE RUN_TAG
-- RUN_TAG makes the ids unique across runs; thread ids across wrk threads.
local body, sig, tag
local counter = 0
local next_thread = 0

function setup(thread)
	thread:set("thread_no", next_thread)
	next_thread = next_thread + 1
end

function init(args)
	local f = assert(io.open(args[1], "rb"))
	body = f:read("*a")
	f:close()
	sig = args[2]
	tag = args[3] .. "-" .. tostring(thread_no or 0) .. "-"
end

function request()
	counter = counter + 1
	return wrk.format("POST", nil, {
		["Content-Type"] = "application/json",
		["User-Agent"] = "GitHub-Hookshot/bench",
		["X-GitHub-Event"] = "push",
		["X-GitHub-Delivery"] = tag .. counter,
		["X-Hub-Signature-256"] = sig,
	}, body)
end
