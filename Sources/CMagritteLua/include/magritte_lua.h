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

/// The Swift side of every Swift function called from Lua: `box` is the retained Swift object
/// the function's userdata holds. Returns the number of results pushed, or -1 after pushing an
/// error message (the C trampoline then raises it with lua_error).
typedef int (*mg_swift_dispatch)(lua_State *L, void *box);

/// Releases a retained Swift object (the `__gc` of Magritte's userdata calls it).
typedef void (*mg_swift_release)(void *object);

/// Sets the two functions above (once, before any state exists).
void mg_setswift(mg_swift_dispatch dispatch, mg_swift_release release);

/// What a Magritte userdata holds: a tag that says what kind of Swift object follows, and that
/// object (retained; NULL once `__gc` has released it). Only C and Swift write it, so a script
/// cannot forge one: with `debug.setmetatable`, `debug.setupvalue` or the registry it can put
/// any userdata anywhere, and the tag is what tells ours (and of which kind) from the rest.
typedef struct mg_box {
    const void *tag;
    void *object;
} mg_box;

/// The tags: a Swift function's box, and an object of a LuaClass.
const void *mg_functiontag(void);
const void *mg_objecttag(void);

/// Pushes a new userdata holding `object` under `tag`, with no metatable yet.
void mg_pushbox(lua_State *L, const void *tag, void *object);

/// The box of the userdata at `i` if it is one of ours with `tag`, else NULL (never raises).
mg_box *mg_tobox(lua_State *L, int i, const void *tag);

/// Pushes a Swift function: a C closure whose one upvalue is the userdata holding `box`
/// (a retained FunctionBox). The closure checks that upvalue on every call.
void mg_pushswiftfunction(lua_State *L, void *box);

/// Pushes `registry[name]` without metamethods (never raises).
int mg_rawgetregistry(lua_State *L, const char *name);
/// Pops a value into `registry[name]` without metamethods.
void mg_rawsetregistry(lua_State *L, const char *name);

/// Whether the userdata at `i` has, as its metatable, the table in `registry[name]` (raw
/// accesses only: never raises).
int mg_hasmetatable(lua_State *L, int i, const char *name);

/// Pushes the `__gc` for boxes with `tag`: it releases the object once (a second call, or one
/// after the object was released, does nothing) and raises a Lua error for anything that is not
/// such a box.
void mg_pushgc(lua_State *L, const void *tag);

/// `tostring(v)` of the value at `i` as `print` makes it (luaL_tolstring, `__tostring` and
/// `__name` included), under lua_pcall: pushes the string and returns LUA_OK, or pushes the
/// error message and returns the error status.
int mg_ptostring(lua_State *L, int i);

/// `string.find(subject, pattern)` with the two on top of the stack (popped), under lua_pcall
/// with handler `msgh`: pushes the first result, or the error message.
int mg_pfind(lua_State *L, int msgh);

/// `_G[name] = v` (v popped) under lua_pcall, since a metatable on _G may raise.
int mg_psetglobal(lua_State *L, const char *name);

/// Replaces `load`, `loadfile`, `dofile` and the Lua file searcher of `require` with versions
/// that load text chunks only, unless the script passes the mode ("b" or "bt") explicitly to
/// `load` or `loadfile`: Lua 5.4 does not verify precompiled chunks, and a mutated one can crash
/// the host. The standard functions are not kept anywhere a script can reach.
void mg_textonly(lua_State *L);

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
