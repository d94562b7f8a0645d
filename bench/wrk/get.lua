-- wrk script of scripts/bench: GET of the URL given to wrk, with
-- "Authorization: Bearer TOKEN" when a token follows "--" (the same request
-- bytes for genq-api and for the nginx reference). done() prints one
-- machine-readable line.
function init(args)
  if args[1] ~= nil and args[1] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[1]
  end
end

done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
