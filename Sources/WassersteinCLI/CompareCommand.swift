import ArgumentParser

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compare", abstract: "Not yet available.")
    func run() throws { throw CommandError("'compare' is not available yet") }
}
