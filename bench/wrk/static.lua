-- wrk script for `make bench`: one fixed request, built once per thread (no
-- request() function, so wrk sends it without calling Lua).
--   wrk ... -s static.lua URL -- METHOD BODY_FILE|- ["Name: value" ...]
function init(args)
	wrk.method = args[1]
	if args[2] and args[2] ~= "-" then
		local f = assert(io.open(args[2], "rb"))
		wrk.body = f:read("*a")
		f:close()
	end
	for i = 3, #args do
		local name, value = args[i]:match("^([^:]+):%s*(.*)$")
		if name then wrk.headers[name] = value end
	end
end
