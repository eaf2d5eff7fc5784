/// A position in an expression: 1-based line and column (in Unicode scalars) and the scalar offset.
public struct SourcePosition: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var line: Int
    public var column: Int
    public var description: String { "\(line):\(column)" }
}

/// An error in an expression, with its position and a caret line under the offending token.
public struct CELError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var position: SourcePosition?
    /// The source line and a caret under the position.
    public var snippet: String?

    public init(_ message: String, at position: SourcePosition? = nil, source: [Unicode.Scalar]? = nil) {
        self.message = message
        self.position = position
        if let position, let source {
            var lineStart = position.offset
            while lineStart > 0, source[lineStart - 1] != "\n" { lineStart -= 1 }
            var lineEnd = position.offset
            while lineEnd < source.count, source[lineEnd] != "\n" { lineEnd += 1 }
            var line = ""
            line.unicodeScalars.append(contentsOf: source[lineStart..<lineEnd])
            snippet = line + "\n" + String(repeating: " ", count: position.offset - lineStart) + "^"
        }
    }

    public var description: String {
        let head = position.map { "\($0): \(message)" } ?? message
        return snippet.map { head + "\n" + $0 } ?? head
    }
}

enum TokenKind: Equatable, Sendable {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case ident(String)
    /// A backtick-quoted field name (`a.\`content-type\``).
    case quotedIdent(String)
    case punct(String)
    case eof
}

struct Token: Sendable {
    var kind: TokenKind
    var position: SourcePosition
    /// The token as written (for messages).
    var text: String
}

/// Splits a CEL expression into tokens (CEL spec lexical grammar).
struct Lexer {
    let source: [Unicode.Scalar]
    var index = 0
    var line = 1
    var column = 1

    init(_ text: String) {
        source = Array(text.unicodeScalars)
    }

    static let punctuation = [
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", ".", ",", "(", ")", "[", "]", "{", "}", "=",
    ]

    var position: SourcePosition { SourcePosition(offset: index, line: line, column: column) }

    func error(_ message: String, at p: SourcePosition) -> CELError { CELError(message, at: p, source: source) }

    func peek(_ k: Int = 0) -> Unicode.Scalar? { index + k < source.count ? source[index + k] : nil }

    mutating func advance() {
        if source[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    mutating func tokens() throws -> [Token] {
        var out: [Token] = []
        while true {
            skipSpaceAndComments()
            let start = position
            guard let c = peek() else {
                out.append(Token(kind: .eof, position: start, text: "end of input"))
                return out
            }
            let kind: TokenKind
            if isDigit(c) || (c == "." && peek(1).map(isDigit) == true) {
                kind = try number()
            } else if c == "\"" || c == "'" {
                kind = .string(try stringLiteral(raw: false, start: start).text)
            } else if (c == "r" || c == "R"), let q = peek(1), q == "\"" || q == "'" {
                advance()
                kind = .string(try stringLiteral(raw: true, start: start).text)
            } else if (c == "b" || c == "B"), let q = peek(1), q == "\"" || q == "'" {
                advance()
                kind = .bytes(try stringLiteral(raw: false, start: start, bytes: true).bytes)
            } else if (c == "b" || c == "B"), let r = peek(1), r == "r" || r == "R", let q = peek(2), q == "\"" || q == "'" {
                advance()
                advance()
                kind = .bytes(try stringLiteral(raw: true, start: start, bytes: true).bytes)
            } else if (c == "r" || c == "R"), let b = peek(1), b == "b" || b == "B", let q = peek(2), q == "\"" || q == "'" {
                advance()
                advance()
                kind = .bytes(try stringLiteral(raw: true, start: start, bytes: true).bytes)
            } else if c == "`" {
                advance()
                var name = ""
                while let d = peek(), d != "`" {
                    guard d != "\n" else { throw error("unterminated quoted field name", at: start) }
                    name.unicodeScalars.append(d)
                    advance()
                }
                guard peek() == "`" else { throw error("unterminated quoted field name", at: start) }
                advance()
                guard !name.isEmpty else { throw error("empty quoted field name", at: start) }
                kind = .quotedIdent(name)
            } else if isIdentStart(c) {
                var name = ""
                while let d = peek(), isIdentStart(d) || isDigit(d) {
                    name.unicodeScalars.append(d)
                    advance()
                }
                kind = .ident(name)
            } else if let p = Self.punctuation.first(where: { matches($0) }) {
                for _ in p.unicodeScalars { advance() }
                kind = .punct(p)
            } else {
                throw error("unexpected character '\(c)'", at: start)
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: source[start.offset..<index])
            out.append(Token(kind: kind, position: start, text: text))
        }
    }

    func matches(_ p: String) -> Bool {
        for (i, s) in p.unicodeScalars.enumerated() where peek(i) != s { return false }
        return true
    }

    mutating func skipSpaceAndComments() {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" {
                advance()
            } else if c == "/", peek(1) == "/" {
                while let d = peek(), d != "\n" { advance() }
            } else {
                return
            }
        }
    }

    mutating func number() throws -> TokenKind {
        let start = position
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            advance()
            advance()
            var digits = ""
            while let d = peek(), isHex(d) {
                digits.unicodeScalars.append(d)
                advance()
            }
            guard !digits.isEmpty else { throw error("hexadecimal literal needs digits", at: start) }
            if let u = peek(), u == "u" || u == "U" {
                advance()
                guard let v = UInt64(digits, radix: 16) else { throw error("uint literal 0x\(digits) is out of range", at: start) }
                return .uint(v)
            }
            guard let v = UInt64(digits, radix: 16), v <= UInt64(Int64.max) else { throw error("int literal 0x\(digits) is out of range", at: start) }
            return .int(Int64(v))
        }
        var text = ""
        var isDouble = false
        while let d = peek(), isDigit(d) {
            text.unicodeScalars.append(d)
            advance()
        }
        if peek() == ".", peek(1).map(isDigit) == true {
            isDouble = true
            text += "."
            advance()
            while let d = peek(), isDigit(d) {
                text.unicodeScalars.append(d)
                advance()
            }
        }
        if let e = peek(), e == "e" || e == "E" {
            var k = 1
            if let s = peek(1), s == "+" || s == "-" { k = 2 }
            if peek(k).map(isDigit) == true {
                isDouble = true
                for _ in 0..<k {
                    text.unicodeScalars.append(peek()!)
                    advance()
                }
                while let d = peek(), isDigit(d) {
                    text.unicodeScalars.append(d)
                    advance()
                }
            }
        }
        if isDouble {
            guard let v = Double(text.hasPrefix(".") ? "0" + text : text) else { throw error("invalid double literal \(text)", at: start) }
            return .double(v)
        }
        if let u = peek(), u == "u" || u == "U" {
            advance()
            guard let v = UInt64(text) else { throw error("uint literal \(text) is out of range", at: start) }
            return .uint(v)
        }
        // Int64.min is written as -9223372036854775808: the parser negates the magnitude it is given.
        if text == "9223372036854775808" { return .uint(9_223_372_036_854_775_808) }
        guard let v = Int64(text) else { throw error("int literal \(text) is out of range", at: start) }
        return .int(v)
    }

    /// Reads a quoted literal starting at the quote (after any r/b prefix). Byte literals keep \x and octal escapes
    /// as raw bytes (returned as Latin-1-free UTF-8 only when valid; see `bytes`).
    mutating func stringLiteral(raw: Bool, start: SourcePosition, bytes: Bool = false) throws -> (text: String, bytes: [UInt8]) {
        let quote = peek()!
        let triple = peek(1) == quote && peek(2) == quote
        for _ in 0..<(triple ? 3 : 1) { advance() }
        var out = String.UnicodeScalarView()
        var rawBytes: [UInt8] = []
        func append(_ s: Unicode.Scalar) {
            out.append(s)
            rawBytes.append(contentsOf: Array(String(s).utf8))
        }
        while true {
            guard let c = peek() else { throw error("unterminated string literal", at: start) }
            if c == quote && (!triple || (peek(1) == quote && peek(2) == quote)) {
                for _ in 0..<(triple ? 3 : 1) { advance() }
                break
            }
            if !triple && (c == "\n" || c == "\r") { throw error("newline in a single-quoted string literal", at: position) }
            if c == "\\" && !raw {
                let escPos = position
                advance()
                guard let e = peek() else { throw error("unterminated escape sequence", at: escPos) }
                advance()
                switch e {
                case "a": append("\u{07}")
                case "b": append("\u{08}")
                case "f": append("\u{0C}")
                case "n": append("\n")
                case "r": append("\r")
                case "t": append("\t")
                case "v": append("\u{0B}")
                case "\\", "'", "\"", "`", "?": append(e)
                case "x", "X":
                    let v = try hexDigits(2, at: escPos)
                    if bytes { rawBytes.append(UInt8(v)); out.append(Unicode.Scalar(UInt8(v))) } else { append(Unicode.Scalar(UInt8(v))) }
                case "u":
                    let v = try hexDigits(4, at: escPos)
                    guard !bytes, let s = Unicode.Scalar(v) else { throw error("invalid \\u escape", at: escPos) }
                    append(s)
                case "U":
                    let v = try hexDigits(8, at: escPos)
                    guard !bytes, let s = Unicode.Scalar(v) else { throw error("invalid \\U escape", at: escPos) }
                    append(s)
                case "0"..."3":
                    var v = UInt32(e.value - 48)
                    for _ in 0..<2 {
                        guard let d = peek(), ("0"..."7").contains(d) else { throw error("octal escape needs three digits", at: escPos) }
                        v = v * 8 + (d.value - 48)
                        advance()
                    }
                    if bytes { rawBytes.append(UInt8(v)); out.append(Unicode.Scalar(UInt8(v))) } else { append(Unicode.Scalar(UInt8(v))) }
                default:
                    throw error("invalid escape sequence \\\(e)", at: escPos)
                }
                continue
            }
            append(c)
            advance()
        }
        return (String(out), rawBytes)
    }

    mutating func hexDigits(_ n: Int, at p: SourcePosition) throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<n {
            guard let d = peek(), isHex(d) else { throw error("escape needs \(n) hexadecimal digits", at: p) }
            v = v * 16 + UInt32(hexValue(d))
            advance()
        }
        return v
    }
}

func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }
func isHex(_ c: Unicode.Scalar) -> Bool { isDigit(c) || ("a"..."f").contains(c) || ("A"..."F").contains(c) }
func hexValue(_ c: Unicode.Scalar) -> UInt32 {
    if isDigit(c) { return c.value - 48 }
    if ("a"..."f").contains(c) { return c.value - 87 }
    return c.value - 55
}
func isIdentStart(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" }
