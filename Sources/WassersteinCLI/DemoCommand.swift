import ArgumentParser

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Not yet available.")
    func run() throws { throw CommandError("'demo' is not available yet") }
}
