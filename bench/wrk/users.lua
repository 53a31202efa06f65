-- wrk script for `make bench`: requests spread over many users, each with its
-- own bearer JWT (one per line in TOKENS_FILE), in turn.
--   wrk ... -s users.lua URL -- MODE TOKENS_FILE RUN_TAG [PROVIDER]
-- MODE store: POST storeCredentials {"provider":PROVIDER,"connection":<unique>,
--             "credentials":{"api_key":...}}: a new integration each time
--             (insert, not an upsert of one hot row)
-- MODE get:   GET of the URL's path (auth-start) as the next user
local mode, tag, provider
local tokens = {}
local counter = 0
local next_thread = 0
local path

function setup(thread)
	thread:set("thread_no", next_thread)
	next_thread = next_thread + 1
end

function init(args)
	mode = args[1]
	for line in io.lines(args[2]) do
		if #line > 0 then tokens[#tokens + 1] = line end
	end
	tag = args[3] .. "-" .. tostring(thread_no or 0) .. "-"
	provider = args[4] or "benchkey"
	path = wrk.path
	-- threads start at different users
	counter = (thread_no or 0) * 7919
end

function request()
	counter = counter + 1
	local token = tokens[(counter % #tokens) + 1]
	if mode == "store" then
		local body = '{"provider":"' .. provider .. '","connection":"b' .. tag .. counter ..
			'","credentials":{"api_key":"sk_bench_0123456789abcdefghijklmnopqrstuvwxyzABCDEF"}}'
		return wrk.format("POST", path, {
			["Content-Type"] = "application/json",
			["Authorization"] = "Bearer " .. token,
		}, body)
	end
	return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token }, nil)
end
