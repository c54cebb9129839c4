#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEditLine

/// The console's line editor: libedit in emacs mode (so `~/.editrc` applies), with a history
/// kept in a file and a Tab key that asks `complete` for words.
///
/// libedit calls back through C function pointers that cannot capture context, so the one
/// editor of the process is reached through `LineEditor.current`.
final class LineEditor {
    enum Input: Equatable {
        case line(String)
        /// Ctrl-C at the prompt.
        case interrupted
        /// Ctrl-D on an empty line, or the end of the input.
        case end
    }

    /// Returns the candidates for the text before the cursor: whole words that replace the
    /// word `wordStart` characters back, and how to show them (usually the last name only).
    typealias Completer = (_ before: String) -> (wordLength: Int, candidates: [(word: String, shown: String)])

    nonisolated(unsafe) static var current: LineEditor?

    private let editLine: OpaquePointer
    private let history: OpaquePointer?
    private let historyPath: String?
    private var prompt: UnsafeMutablePointer<CChar>
    let complete: Completer

    /// An editor on stdin/stdout. `historyPath` nil keeps the history in memory only.
    init(program: String, historyPath: String?, complete: @escaping Completer) {
        setlocale(LC_CTYPE, "")
        self.historyPath = historyPath
        self.complete = complete
        prompt = strdup("> ")
        editLine = el_init(program, mg_stdin(), mg_stdout(), mg_stderr())
        history = mg_history_new(1000)
        mg_el_set_editor(editLine, "emacs")
        mg_el_set_signal(editLine, 1)
        mg_el_set_prompt(editLine) { _ in LineEditor.current?.prompt }
        if let history { mg_el_set_history(editLine, history) }
        mg_el_add_command(editLine, "magritte-complete", "Complete a Lua name or a file name") { el, _ in
            guard let el, let editor = LineEditor.current else { return UInt8(CC_ERROR) }
            return editor.completeCommand(el)
        }
        mg_el_bind(editLine, "^I", "magritte-complete")
        _ = el_source(editLine, nil)
        if let history, let historyPath { _ = mg_history_load(history, historyPath) }
        LineEditor.current = self
    }

    deinit {
        if LineEditor.current === self { LineEditor.current = nil }
        el_end(editLine)
        if let history { history_end(history) }
        free(prompt)
    }

    /// Reads one line (without its newline) after showing `prompt`.
    func read(prompt text: String) -> Input {
        free(prompt)
        prompt = strdup(text)
        var count: Int32 = 0
        errno = 0
        guard let p = el_gets(editLine, &count) else {
            return count < 0 && errno == EINTR ? .interrupted : .end
        }
        var line = String(cString: p)
        if line.hasSuffix("\n") { line.removeLast() }
        return .line(line)
    }

    /// Adds `entry` (a whole chunk, newlines included) to the history and saves the history.
    func remember(_ entry: String) {
        guard let history, entry.contains(where: { !$0.isWhitespace }) else { return }
        _ = mg_history_enter(history, entry)
        if let historyPath { _ = mg_history_save(history, historyPath) }
    }

    // MARK: Tab

    private func completeCommand(_ el: OpaquePointer) -> UInt8 {
        guard let info = el_line(el)?.pointee, let start = info.buffer, let cursor = info.cursor else {
            return UInt8(CC_ERROR)
        }
        let before = String(decoding: UnsafeRawBufferPointer(start: start, count: cursor - start), as: UTF8.self)
        let (wordLength, candidates) = complete(before)
        guard !candidates.isEmpty else { return UInt8(CC_REFRESH_BEEP) }
        let typed = String(before.utf8.suffix(wordLength))!
        let common = commonPrefix(candidates.map(\.word))
        if common.utf8.count > typed.utf8.count, common.hasPrefix(typed) {
            _ = el_insertstr(el, String(common.utf8.dropFirst(typed.utf8.count))!)
            return UInt8(CC_REFRESH)
        }
        if candidates.count == 1 { return UInt8(CC_REFRESH) }
        showColumns(candidates.map(\.shown))
        return UInt8(CC_REDISPLAY)
    }

    private func commonPrefix(_ words: [String]) -> String {
        guard var prefix = words.first else { return "" }
        for w in words.dropFirst() {
            prefix = String(zip(prefix, w).prefix(while: { $0 == $1 }).map(\.0))
        }
        return prefix
    }

    /// Lists `names` below the line in columns, as shells do.
    private func showColumns(_ names: [String]) {
        let width = Int(mg_terminal_columns(1))
        let column = (names.map(\.count).max() ?? 0) + 2
        let perLine = max(1, width / column)
        let rows = (names.count + perLine - 1) / perLine
        var text = "\n"
        for r in 0..<rows {
            var line = ""
            for c in 0..<perLine {
                let i = c * rows + r
                guard i < names.count else { break }
                let name = names[i]
                line += c == perLine - 1 || (c + 1) * rows + r >= names.count
                    ? name : name + String(repeating: " ", count: column - name.count)
            }
            text += line + "\n"
        }
        fputs(text, mg_stdout())
        fflush(mg_stdout())
    }
}
