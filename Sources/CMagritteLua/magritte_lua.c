#include <string.h>
#include "magritte_lua.h"

static int trampoline(lua_State *L) {
    mg_swift_function fn = (mg_swift_function)lua_touserdata(L, lua_upvalueindex(1));
    int n = fn(L);
    if (n < 0) return lua_error(L);  /* the Swift frame has returned: longjmp is safe here */
    return n;
}

void mg_pushswiftclosure(lua_State *L, mg_swift_function fn, int nup) {
    lua_pushlightuserdata(L, (void *)fn);
    lua_insert(L, -(nup + 1));
    lua_pushcclosure(L, trampoline, nup + 1);
}

int mg_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    /* An error from a callback already carries the traceback from the callback down to the
     * outermost call (collected where it was raised): one is enough. */
    if (strstr(msg, "\nstack traceback:") != NULL) {
        lua_settop(L, 1);
        return 1;
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

void mg_interrupt(lua_State *L) {
    lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}
