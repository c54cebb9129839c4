// Magritte's C shim over Lua 5.4.
//
// Two reasons for this file. Lua's macros (lua_pop, lua_tostring, lua_pcall, ...) are not
// callable from Swift, so each one we use is wrapped here as a static inline function with the
// prefix `mg_`. And lua_error() unwinds with longjmp, which must never cross a Swift frame: Swift
// functions called from Lua return a status instead (see mg_pushswiftclosure), and this C code
// raises the error after the Swift frame has returned.
#ifndef MAGRITTE_LUA_H
#define MAGRITTE_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/// A Swift function called from Lua. Returns the number of results pushed, or -1 after pushing
/// an error message (the C trampoline then raises it with lua_error).
typedef int (*mg_swift_function)(lua_State *L);

/// Pushes a C closure that calls `fn` through the trampoline. `fn` sees its own upvalues from
/// index mg_upvalueindex(2) on; the `nup` values on top of the stack become those upvalues.
void mg_pushswiftclosure(lua_State *L, mg_swift_function fn, int nup);

/// A message handler for lua_pcall that appends a traceback (as lua.c does).
int mg_traceback(lua_State *L);

/// Installs a hook that raises "interrupted!" at the next Lua instruction. Safe to call from a
/// signal handler (lua_sethook is async-signal-safe, as lua.c relies on).
void mg_interrupt(lua_State *L);

static inline void mg_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void mg_newtable(lua_State *L) { lua_newtable(L); }
static inline const char *mg_tostring(lua_State *L, int i) { return lua_tolstring(L, i, NULL); }
static inline int mg_isnil(lua_State *L, int i) { return lua_isnil(L, i); }
static inline int mg_isnoneornil(lua_State *L, int i) { return lua_isnoneornil(L, i); }
static inline int mg_istable(lua_State *L, int i) { return lua_istable(L, i); }
static inline int mg_isfunction(lua_State *L, int i) { return lua_isfunction(L, i); }
static inline int mg_isboolean(lua_State *L, int i) { return lua_isboolean(L, i); }
static inline int mg_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int mg_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int mg_pcall(lua_State *L, int nargs, int nresults, int msgh) { return lua_pcall(L, nargs, nresults, msgh); }
static inline void *mg_newuserdata(lua_State *L, size_t size) { return lua_newuserdatauv(L, size, 1); }
static inline int mg_getmetatable_named(lua_State *L, const char *name) { return luaL_getmetatable(L, name); }
static inline void mg_remove(lua_State *L, int i) { lua_remove(L, i); }
static inline void mg_insert(lua_State *L, int i) { lua_insert(L, i); }
static inline void mg_replace(lua_State *L, int i) { lua_replace(L, i); }
static inline lua_Number mg_tonumber(lua_State *L, int i, int *isnum) { return lua_tonumberx(L, i, isnum); }
static inline lua_Integer mg_tointeger(lua_State *L, int i, int *isnum) { return lua_tointegerx(L, i, isnum); }
static inline int mg_loadbuffer(lua_State *L, const char *s, size_t n, const char *name) {
    return luaL_loadbufferx(L, s, n, name, "t");
}
static inline int mg_version(void) { return LUA_VERSION_NUM; }

#endif
