/// The toolkit's version, the one place it is written: `wasserstein --version` prints it.
/// Bump it here when a release changes what the commands compute or write.
public enum ToolkitVersion {
    /// `major.minor.patch`.
    public static let current = "0.1.0"
}
