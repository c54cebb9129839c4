import CMagritteLua
import MagritteCore

extension MagritteLua {
    // MARK: memory and handles

    func defineMemory() {
        let c = memoryClass
        c.description { v in "magritte.memory(\(v.owner.isEmpty ? "" : v.owner + ", ")\(v.space))" }
        for (name, size) in [("read8", 1), ("read16", 2), ("read32", 4)] {
            c.method(name) { v, call in
                let a = try call.word(2, "address")
                call.state.push(try read(v, a, size))
                return 1
            }
        }
        for (name, size) in [("write8", 1), ("write16", 2), ("write32", 4)] {
            c.method(name) { v, call in
                let a = try call.word(2, "address")
                let value = try call.word(3, "value")
                try write(v, a, size, value)
                return 0
            }
        }
        c.method("read_string") { v, call in
            let a = try call.word(2, "address")
            let max = try call.optionalInteger(3) ?? 4096
            guard max >= 0 && max <= 1 << 24 else { throw LuaError("read_string: the length limit must be 0..16M") }
            var bytes: [UInt8] = []
            var p = a
            while bytes.count < max {
                let b = UInt8(try read(v, p, 1))
                if b == 0 { break }
                bytes.append(b)
                p &+= 1
            }
            call.state.push(String(decoding: bytes, as: UTF8.self))
            return 1
        }
        c.method("read_bytes") { v, call in
            let a = try call.word(2, "address")
            let n = try call.integer(3)
            guard n >= 0 && n <= 1 << 24 else { throw LuaError("read_bytes: the count must be 0..16M") }
            var bytes: [UInt8] = []
            for i in 0..<UInt32(n) { bytes.append(UInt8(try read(v, a &+ i, 1))) }
            bytes.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { c in _ = lua_pushlstring(call.L, c.baseAddress, c.count) }
            }
            return 1
        }
        c.method("write_string") { v, call in
            let a = try call.word(2, "address")
            guard lua_type(call.L, 3) == LUA_TSTRING else { throw call.argError(3, "string") }
            var len = 0
            let p = lua_tolstring(call.L, 3, &len)!
            let bytes = UnsafeRawBufferPointer(start: p, count: len)
            for (i, b) in bytes.enumerated() { try write(v, a &+ UInt32(i), 1, UInt32(b)) }
            return 0
        }
    }

    func defineHandle() {
        let c = handleClass
        c.description { h in
            guard let hook = h.owner.hooks[h.id] else { return "magritte.handle(\(h.id), removed)" }
            return "magritte.handle(\(h.id), \(hook.description)\(hook.enabled ? "" : ", disabled"), \(hook.hits) hits)"
        }
        c.field("id", get: { h, lua in lua.push(h.id) })
        c.field("hits", get: { h, lua in lua.push(try h.hook.hits) })
        c.field("active", get: { h, lua in lua.push(h.owner.hooks[h.id] != nil) })
        c.field("description", get: { h, lua in lua.push(try h.hook.description) })
        c.field("enabled", get: { h, lua in lua.push(try h.hook.enabled) }, set: { h, call, i in
            try h.hook.enabled = call.boolean(i)
            h.owner.hooksChanged()
        })
        c.method("remove") { h, _ in
            _ = try h.hook
            h.owner.remove(h.id)
            return 0
        }
        c.method("enable") { h, _ in
            try h.hook.enabled = true
            h.owner.hooksChanged()
            return 0
        }
        c.method("disable") { h, _ in
            try h.hook.enabled = false
            h.owner.hooksChanged()
            return 0
        }
    }
}

func read(_ v: MemoryView, _ a: UInt32, _ size: Int) throws -> UInt32 {
    guard let value = v.read(a, size) else { throw LuaError("\(v.space) address 0x\(Hex.word(a)) cannot be read (\(v.unreadable))") }
    return value
}

private func write(_ v: MemoryView, _ a: UInt32, _ size: Int, _ value: UInt32) throws {
    guard v.write(a, size, value) else { throw LuaError("\(v.space) address 0x\(Hex.word(a)) cannot be written (\(v.unwritable))") }
}
