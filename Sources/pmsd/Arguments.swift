/// A command-line option that takes a value, such as `--port 32400`.
struct OptionSpec {
    let name: String
    let valueName: String
    let help: String
}

/// A malformed command line; pmsd prints it with the usage and exits 64.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// Parses `--name value`, `--name=value` and bare `--flag` arguments against
/// a fixed list of options and flags. Positional arguments are not accepted.
struct ArgumentParser {
    let options: [OptionSpec]
    let flags: [(name: String, help: String)]

    /// The parsed command line: option values by name and the flags given.
    struct Parsed {
        var values: [String: String] = [:]
        var flags: Set<String> = []
    }

    func parse(_ arguments: [String]) throws(UsageError) -> Parsed {
        var parsed = Parsed()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                throw UsageError(description: "unexpected argument \(argument.debugDescription)")
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if flags.contains(where: { $0.name == name }) {
                guard inlineValue == nil else {
                    throw UsageError(description: "--\(name) takes no value")
                }
                parsed.flags.insert(name)
                continue
            }
            guard options.contains(where: { $0.name == name }) else {
                throw UsageError(description: "unknown option --\(name)")
            }
            if let inlineValue {
                parsed.values[name] = inlineValue
            } else {
                guard index < arguments.count else {
                    throw UsageError(description: "--\(name) needs a value")
                }
                parsed.values[name] = arguments[index]
                index += 1
            }
        }
        return parsed
    }

    /// The help text: one line per option and flag.
    func usage(program: String, summary: String) -> String {
        var lines = ["Usage: \(program) [options]", "", summary, "", "Options:"]
        let rows = options.map { ("--\($0.name) \($0.valueName)", $0.help) } + flags.map { ("--\($0.name)", $0.help) }
        let width = rows.map(\.0.count).max() ?? 0
        for (left, help) in rows {
            lines.append("  " + left.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + help)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
