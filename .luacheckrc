-- luacheck configuration (make lint).
std = "lua54"
cache = false
include_files = {
  "lua/",
  "spec/",
  "examples/",
  "rockspec/",
  "tests/soak/",
  "tests/load/client.lua",
  "tests/load/luv_server.lua",
  "tests/native/constants.lua",
  "tests/native/headers_spec.lua",
  "doc/luals/",
  ".busted",
  ".luacheckrc",
}
exclude_files = { "build/" }

-- Specs run on every Lua: only what 5.1 to 5.4 and LuaJIT share.
files["spec/"] = { std = "min+busted" }
files["tests/native/"] = { std = "min+busted" }
-- So do the examples and the load tools.
files["examples/"] = { std = "min" }
files["tests/load/"] = { std = "min" }
files["rockspec/"] = { std = "+rockspec" }
-- Definitions only: the functions are empty and name their parameters.
files["doc/luals/"] = { unused_args = false, unused = false, max_line_length = false }
stds.rockspec = {
  globals = {
    "rockspec_format", "package", "version", "source", "description",
    "supported_platforms", "dependencies", "build_dependencies",
    "test_dependencies", "build",
    "test",
  },
}
