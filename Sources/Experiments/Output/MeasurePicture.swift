import Wasserstein

/// Pictures of point clouds side by side (the inputs and the result of `barycenter`): a
/// histogram of each cloud in 1-D, a scatter plot in 2-D, nothing beyond (a projection would
/// hide more than it shows).
public enum MeasurePicture {
    /// The most points drawn per cloud: beyond it every `k`-th point is drawn (the picture says
    /// so in the legend), so that the SVG stays a few hundred kilobytes for any cloud.
    public static let maximumPointsDrawn = 4000

    /// The SVG of `clouds` (named by `names`), or `nil` when the dimension is not 1 or 2.
    public static func svg(title: String, clouds: [PointCloud], names: [String]) -> String? {
        guard let dimension = clouds.first?.dimension, clouds.allSatisfy({ $0.dimension == dimension }),
              names.count == clouds.count else { return nil }
        switch dimension {
        case 1:
            return HistogramChart(title: title, xLabel: "x", samples: zip(names, clouds).map { ($0, $1.coordinates) },
                                  binCount: 40).svg()
        case 2:
            let series = zip(names, clouds).map { name, cloud -> ChartSeries in
                let stride = Swift.max(1, (cloud.count + maximumPointsDrawn - 1) / maximumPointsDrawn)
                let rows = Swift.stride(from: 0, to: cloud.count, by: stride)
                let label = stride == 1 ? name : "\(name) (every \(stride)th point)"
                return ChartSeries(name: label, x: rows.map { cloud.coordinates[2 * $0] },
                                   y: rows.map { cloud.coordinates[2 * $0 + 1] }, connected: false)
            }
            return LineChart(title: title, xLabel: "x1", yLabel: "x2", series: series).svg()
        default:
            return nil
        }
    }

    /// Writes ``svg(title:clouds:names:)`` to `path`; returns whether there was a picture to write.
    @discardableResult
    public static func write(title: String, clouds: [PointCloud], names: [String], to path: String) throws -> Bool {
        guard let text = svg(title: title, clouds: clouds, names: names) else { return false }
        try writeSVG(text, path: path)
        return true
    }
}
