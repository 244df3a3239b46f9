import ArgumentParser

struct DistanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "distance", abstract: "Not yet available.")
    func run() throws { throw CommandError("'distance' is not available yet") }
}
