import ArgumentParser

struct JKOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jko", abstract: "Not yet available.")
    func run() throws { throw CommandError("'jko' is not available yet") }
}
