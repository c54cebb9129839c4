#include <string.h>
#include "magritte_lua.h"
#include <string.h>

static mg_swift_dispatch swift_dispatch;
static mg_swift_release swift_release;

void mg_setswift(mg_swift_dispatch dispatch, mg_swift_release release) {
    swift_dispatch = dispatch;
    swift_release = release;
}

/* The tags are the addresses of two statics: no heap pointer (such as the FILE* at the start of
   an io library file) can equal them. */
static const char function_tag = 'f';
static const char object_tag = 'o';
const void *mg_functiontag(void) { return &function_tag; }
const void *mg_objecttag(void) { return &object_tag; }

void mg_pushbox(lua_State *L, const void *tag, void *object) {
    mg_box *b = (mg_box *)lua_newuserdatauv(L, sizeof(mg_box), 0);
    b->tag = tag;
    b->object = object;
}

mg_box *mg_tobox(lua_State *L, int i, const void *tag) {
    if (lua_type(L, i) != LUA_TUSERDATA || lua_rawlen(L, i) != sizeof(mg_box)) return NULL;
    mg_box *b = (mg_box *)lua_touserdata(L, i);
    return b->tag == tag ? b : NULL;
}

static int trampoline(lua_State *L) {
    mg_box *b = mg_tobox(L, lua_upvalueindex(1), &function_tag);
    if (b == NULL) return luaL_error(L, "this Magritte function's upvalue was replaced (debug.setupvalue): it cannot be called");
    if (b->object == NULL) return luaL_error(L, "this Magritte function was released (its __gc was called)");
    int n = swift_dispatch(L, b->object);
    if (n < 0) return lua_error(L);  /* the Swift frame has returned: longjmp is safe here */
    return n;
}

void mg_pushswiftfunction(lua_State *L, void *box) {
    mg_pushbox(L, &function_tag, box);
    if (mg_rawgetregistry(L, "magritte.function") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 2);
        mg_pushgc(L, &function_tag);
        lua_setfield(L, -2, "__gc");
        lua_pushstring(L, "magritte.function");
        lua_setfield(L, -2, "__name");
        lua_pushvalue(L, -1);
        mg_rawsetregistry(L, "magritte.function");
    }
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, trampoline, 1);
}

int mg_rawgetregistry(lua_State *L, const char *name) {
    lua_pushstring(L, name);
    return lua_rawget(L, LUA_REGISTRYINDEX);
}

void mg_rawsetregistry(lua_State *L, const char *name) {
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

int mg_hasmetatable(lua_State *L, int i, const char *name) {
    i = lua_absindex(L, i);
    if (!lua_getmetatable(L, i)) return 0;
    mg_rawgetregistry(L, name);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

static int gc(lua_State *L) {
    const void *tag = lua_touserdata(L, lua_upvalueindex(1));
    mg_box *b = mg_tobox(L, 1, tag);
    if (b == NULL) return luaL_error(L, "__gc: a Magritte value expected, got %s", luaL_typename(L, 1));
    void *object = b->object;
    b->object = NULL;  /* before the release, which may run Swift deinitializers */
    if (object != NULL) swift_release(object);
    return 0;
}

void mg_pushgc(lua_State *L, const void *tag) {
    lua_pushlightuserdata(L, (void *)tag);
    lua_pushcclosure(L, gc, 1);
}

static int tostring_cf(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int mg_ptostring(lua_State *L, int i) {
    i = lua_absindex(L, i);
    lua_pushcfunction(L, tostring_cf);
    lua_pushvalue(L, i);
    return lua_pcall(L, 1, 1, 0);
}

static int find_cf(lua_State *L) {
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "find");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

int mg_pfind(lua_State *L, int msgh) {
    lua_pushcfunction(L, find_cf);
    lua_insert(L, -3);
    return lua_pcall(L, 2, 1, msgh);
}

static int setglobal_cf(lua_State *L) {
    lua_pushvalue(L, 1);
    lua_setglobal(L, lua_tostring(L, 2));
    return 0;
}

int mg_psetglobal(lua_State *L, const char *name) {
    lua_pushcfunction(L, setglobal_cf);
    lua_insert(L, -2);
    lua_pushstring(L, name);
    return lua_pcall(L, 2, 0, 0);
}

/* The results of load and loadfile: the function (its first upvalue set to the value at `env`,
   unless 0), or fail and the message. */
static int loaded(lua_State *L, int status, int env) {
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env != 0) {
        lua_pushvalue(L, env);
        if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    }
    return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]): as the standard one, mode "t" unless given. A
   function chunk is read piece by piece into one string first. */
static int text_load(lua_State *L) {
    int env = lua_isnone(L, 4) ? 0 : 4;
    const char *mode = luaL_optstring(L, 3, "t");
    size_t len;
    const char *chunkname;
    if (lua_type(L, 1) == LUA_TSTRING) {
        lua_pushvalue(L, 1);
        chunkname = luaL_optstring(L, 2, lua_tostring(L, 1));
    } else {
        luaL_checktype(L, 1, LUA_TFUNCTION);
        chunkname = luaL_optstring(L, 2, "=(load)");
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "reader function must return a string");
            if (lua_rawlen(L, -1) == 0) { lua_pop(L, 1); break; }
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
    }
    const char *s = lua_tolstring(L, -1, &len);
    return loaded(L, luaL_loadbufferx(L, s, len, chunkname, mode), env);
}

/* loadfile([filename [, mode [, env]]]) */
static int text_loadfile(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    const char *mode = luaL_optstring(L, 2, "t");
    int env = lua_isnone(L, 3) ? 0 : 3;
    return loaded(L, luaL_loadfilex(L, name, mode), env);
}

/* dofile([filename]): text only. */
static int text_dofile(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, name, "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* The searcher for Lua files of `require`, loading text only (searchers[2]). */
static int text_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_getglobal(L, "package");
    if (lua_type(L, -1) != LUA_TTABLE) return luaL_error(L, "package is not a table");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) return 1;  /* the message of searchpath */
    lua_pop(L, 1);
    const char *file = lua_tostring(L, -1);
    if (file == NULL) return luaL_error(L, "package.searchpath did not return a file name");
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file, lua_tostring(L, -1));
    lua_pushvalue(L, -2);  /* the file name, the loader's second argument */
    return 2;
}

void mg_textonly(lua_State *L) {
    lua_pushglobaltable(L);
    lua_pushcfunction(L, text_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, text_loadfile);
    lua_setfield(L, -2, "loadfile");
    lua_pushcfunction(L, text_dofile);
    lua_setfield(L, -2, "dofile");
    lua_getfield(L, -1, "package");
    lua_getfield(L, -1, "searchers");
    lua_pushcfunction(L, text_searcher);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 3);
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
