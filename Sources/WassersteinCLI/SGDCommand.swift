import ArgumentParser

struct SGDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sgd", abstract: "Not yet available.")
    func run() throws { throw CommandError("'sgd' is not available yet") }
}
