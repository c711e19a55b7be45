/* talos corpus driver for Lua 5.4 (written for talos, not upstream code;
 * lua-src ships the library without the standalone lua.c).
 * Runs argv[1] as a Lua chunk, or a built-in script that keeps the VM's
 * opcode dispatch (luaV_execute), the parser, the GC, coroutines, error
 * handling (longjmp) and the string/table/math libraries live, and prints
 * what the script returns. */
#include <stdio.h>
#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static const char *script =
    "local t, s = {}, 0\n"
    "for i = 1, 2000 do t[i] = i * i % 97 end\n"
    "table.sort(t)\n"
    "for i, v in ipairs(t) do s = s + v // (i % 7 + 1) end\n"
    "local function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end\n"
    "local co = coroutine.wrap(function(a) for i = 1, 3 do a = coroutine.yield(a + i) end end)\n"
    "local c = co(1) + co(2) + co(3)\n"
    "local ok, e = pcall(function() error({code = 7}) end)\n"
    "local words = {}\n"
    "for w in string.gmatch('talos checks the code that runs', '%a+') do\n"
    "  words[#words + 1] = w:upper():rep(2, '-')\n"
    "end\n"
    "local mt = setmetatable({}, {__index = function(_, k) return #k end})\n"
    "local f = string.format('%5.2f %x %q', math.pi * s, s, table.concat(words, ','))\n"
    "return s + fib(18) + c + (ok and 0 or e.code) + mt.abc + #f, utf8.char(72, 228, 8364)\n";

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fputs("cannot create state\n", stderr);
        return 1;
    }
    luaL_openlibs(L);
    int rc = argc > 1 ? luaL_loadstring(L, argv[1]) : luaL_loadstring(L, script);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, LUA_MULTRET, 0);
    if (rc != LUA_OK) {
        fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    for (int i = 1; i <= lua_gettop(L); i++)
        printf("%s%s", i > 1 ? "\t" : "", luaL_tolstring(L, i, NULL)), lua_pop(L, 1);
    printf("\n");
    lua_close(L);
    return 0;
}
