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

extension MeasurePicture {
    /// The SVG of densities on a regular grid (the inputs and the result of `barycenter --grid`),
    /// or `nil` beyond two axes. 1-D: one curve per density, in mass per unit length. 2-D: a heat
    /// map of the last density (the barycenter) in mass per unit area, axis 0 along x, with the
    /// mean of every other density marked and named.
    ///
    /// - Parameters:
    ///   - title: the picture's title.
    ///   - densities: masses at the grid points, row-major (axis 0 slowest), one array each.
    ///   - names: one legend name per density.
    ///   - pointsPerAxis: the grid's points per axis, 1 or 2 axes.
    ///   - spacing: the grid's spacing per axis, the first point at 0.
    public static func gridSVG(title: String, densities: [[Double]], names: [String], pointsPerAxis: [Int],
                               spacing: [Double]) -> String? {
        guard let last = densities.last, names.count == densities.count, spacing.count == pointsPerAxis.count else { return nil }
        let coordinates = zip(pointsPerAxis, spacing).map { n, h in (0 ..< n).map { h * Double($0) } }
        switch pointsPerAxis.count {
        case 1:
            let h = spacing[0]
            let series = zip(names, densities).enumerated().map { k, pair in
                ChartSeries(name: pair.0, x: coordinates[0], y: pair.1.map { $0 / h }, dashed: k < densities.count - 1)
            }
            return LineChart(title: title, xLabel: "x", yLabel: "density", series: series).svg()
        case 2:
            let cell = spacing[0] * spacing[1]
            let n1 = pointsPerAxis[1]
            let markers = zip(names, densities).dropLast().map { name, masses -> (x: Double, y: Double, label: String) in
                var total = 0.0, mx = 0.0, my = 0.0
                for (p, m) in masses.enumerated() {
                    total += m
                    mx += m * coordinates[0][p / n1]
                    my += m * coordinates[1][p % n1]
                }
                return total > 0 ? (mx / total, my / total, name) : (0, 0, name)
            }
            return HeatmapChart(title: title, xLabel: "x1 (axis 0)", yLabel: "x2 (axis 1)", xCenters: coordinates[0],
                                yCenters: coordinates[1], values: last.map { $0 / cell }, markers: markers).svg()
        default:
            return nil
        }
    }
}

extension MeasurePicture {
    /// Writes ``gridSVG(title:densities:names:pointsPerAxis:spacing:)`` to `path`; returns whether
    /// there was a picture to write.
    @discardableResult
    public static func writeGrid(title: String, densities: [[Double]], names: [String], pointsPerAxis: [Int],
                                 spacing: [Double], to path: String) throws -> Bool {
        guard let text = gridSVG(title: title, densities: densities, names: names, pointsPerAxis: pointsPerAxis,
                                 spacing: spacing) else { return false }
        try writeSVG(text, path: path)
        return true
    }
}
