/// Path arithmetic on plain strings, component by component.
///
/// Foundation's `NSString` path methods trap on Linux for some short relative paths
/// (`deletingLastPathComponent` of `"r"` ends in an illegal instruction), so the output folder
/// never goes through them. These functions are lexical: they never touch the file system and
/// keep `..` as it is, so that a path means what the kernel will make of it (a `..` after a
/// link leads out of the link's target, not back to where the link is).
public enum FolderPath {
    /// The path without empty and `.` components and without a trailing slash; `"."` for a path
    /// that names the current folder, `"/"` for the root.
    public static func normalized(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// The folder that holds `path` (normalised first): `"."` for a one-component relative path,
    /// `"/"` for a top-level absolute one and for the root itself. For a path ending in `..` the
    /// parent is taken lexically too (`a/..` -> `a/../..`), so it still names the holder.
    public static func parent(_ path: String) -> String {
        let p = normalized(path)
        if p == "/" { return "/" }
        if p == "." { return ".." }
        if p == ".." || p.hasSuffix("/..") { return p + "/.." }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    /// The last component of `path` (normalised first): the file name of a file path, for labels.
    public static func lastComponent(of path: String) -> String {
        let p = normalized(path)
        guard let slash = p.lastIndex(of: "/"), p != "/" else { return p }
        return String(p[p.index(after: slash)...])
    }

    /// `folder/name`, without a doubled slash.
    public static func appending(_ folder: String, _ name: String) -> String {
        if folder.isEmpty { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}
