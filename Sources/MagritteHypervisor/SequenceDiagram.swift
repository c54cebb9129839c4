/// Draws flows as SVG sequence diagrams: one lifeline per lane, one box per step, an arrow
/// where control passes from one lane to another.
public enum SequenceDiagram {
    static let laneWidth = 250.0
    static let margin = 20.0
    static let lineHeight = 15.0
    static let charsPerLine = 38

    /// The flows of a VMM run, each beside the same flow on bare hardware, one row per flow.
    public static func svg(flows: [LectureFlow], trace: [VMMEvent], guests: [Guest]) -> String {
        var rows: [[Flow]] = []
        for f in flows {
            guard let v = LectureTables.flow(f, trace: trace) else { continue }
            var row = [v]
            if let g = guests.first(where: { $0.name == v.guest }), let bare = LectureTables.bareFlow(f, like: g, pc: v.pc) { row.append(bare) }
            rows.append(row)
        }
        return svg(rows: rows)
    }

    /// Diagrams laid out in rows (left to right within a row).
    public static func svg(rows: [[Flow]]) -> String {
        var body = ""
        var y = margin
        var width = 2 * margin
        for row in rows {
            var x = margin
            var rowHeight = 0.0
            for flow in row {
                let (text, w, h) = diagram(flow, x: x, y: y)
                body += text
                x += w + 2 * margin
                rowHeight = max(rowHeight, h)
            }
            width = max(width, x)
            y += rowHeight + 2 * margin
        }
        let height = max(y, 2 * margin)
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>
            <rect width="100%" height="100%" fill="white"/>
            \(body)</svg>

            """
    }

    static let fills: [Lane: String] = [.process: "#e8f1fb", .hardware: "#eeeeee", .os: "#eaf6e6", .vmm: "#fbeee0"]

    /// One flow at (x, y): its SVG, width and height.
    static func diagram(_ flow: Flow, x: Double, y: Double) -> (String, Double, Double) {
        let width = Double(flow.lanes.count) * laneWidth
        var out = "<g>\n"
        out += text(flow.title, x: x, y: y + 12, weight: "bold", size: 14)
        let headerY = y + 28
        func center(_ lane: Lane) -> Double {
            x + (Double(flow.lanes.firstIndex(of: lane) ?? 0) + 0.5) * laneWidth
        }
        var steps = ""
        var cursor = headerY + 40
        var previous: (lane: Lane, bottom: Double)?
        for (n, step) in flow.steps.enumerated() {
            let lines = LectureTables.wrap("\(n + 1). " + step.text, width: charsPerLine, indent: 3)
            let boxHeight = Double(lines.count) * lineHeight + 10
            let cx = center(step.lane)
            let bx = cx - laneWidth / 2 + 8, bw = laneWidth - 16
            if let p = previous {
                let from = center(p.lane)
                if p.lane == step.lane {
                    steps += "<line x1=\"\(f(from))\" y1=\"\(f(p.bottom))\" x2=\"\(f(cx))\" y2=\"\(f(cursor))\" stroke=\"#333\" marker-end=\"url(#arrow)\"/>\n"
                } else {
                    // Control passes to another lane: a horizontal arrow at the top of the new box.
                    let ay = cursor - 8
                    steps += "<polyline points=\"\(f(from)),\(f(p.bottom)) \(f(from)),\(f(ay)) \(f(cx + (cx > from ? -bw / 2 : bw / 2))),\(f(ay))\" fill=\"none\" stroke=\"#333\" marker-end=\"url(#arrow)\"/>\n"
                }
            }
            steps += "<rect x=\"\(f(bx))\" y=\"\(f(cursor))\" width=\"\(f(bw))\" height=\"\(f(boxHeight))\" rx=\"5\" fill=\"\(fills[step.lane] ?? "#fff")\" stroke=\"#666\"/>\n"
            for (i, l) in lines.enumerated() {
                steps += text(l, x: bx + 6, y: cursor + 17 + Double(i) * lineHeight)
            }
            previous = (step.lane, cursor + boxHeight)
            cursor += boxHeight + 26
        }
        let bottom = cursor
        for lane in flow.lanes {
            let cx = center(lane)
            out += "<rect x=\"\(f(cx - laneWidth / 2 + 8))\" y=\"\(f(headerY))\" width=\"\(f(laneWidth - 16))\" height=\"24\" rx=\"4\" fill=\"\(fills[lane] ?? "#fff")\" stroke=\"#333\"/>\n"
            out += text(lane.rawValue, x: cx, y: headerY + 16, weight: "bold", anchor: "middle")
            out += "<line x1=\"\(f(cx))\" y1=\"\(f(headerY + 24))\" x2=\"\(f(cx))\" y2=\"\(f(bottom))\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n"
        }
        out += steps
        var height = bottom - y
        if let note = flow.note {
            for (i, l) in LectureTables.wrap(note, width: Int(width / 6.5), indent: 0).enumerated() {
                out += text(l, x: x, y: bottom + 4 + Double(i) * lineHeight, style: "italic")
                height += lineHeight
            }
        }
        out += "</g>\n"
        return (out, width, height)
    }

    static func text(_ s: String, x: Double, y: Double, weight: String? = nil, size: Int? = nil, anchor: String? = nil, style: String? = nil) -> String {
        var attrs = "x=\"\(f(x))\" y=\"\(f(y))\""
        if let weight { attrs += " font-weight=\"\(weight)\"" }
        if let size { attrs += " font-size=\"\(size)\"" }
        if let anchor { attrs += " text-anchor=\"\(anchor)\"" }
        if let style { attrs += " font-style=\"\(style)\"" }
        return "<text \(attrs)>\(escape(s))</text>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func f(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }
}
