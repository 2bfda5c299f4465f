package org.trackpose.bridge;

/** A triangle mesh: vertex coordinates (x, y, z interleaved) and triangles (three vertex indices each). */
public final class Mesh {

    private final double[] vertices;
    private final int[] triangles;

    public Mesh(double[] vertices, int[] triangles) {
        if (vertices.length % 3 != 0 || triangles.length % 3 != 0) {
            throw new IllegalArgumentException("vertices and triangles must come in threes");
        }
        for (int i : triangles) {
            if (i < 0 || i >= vertices.length / 3) {
                throw new IllegalArgumentException("triangle refers to vertex " + i + " of " + vertices.length / 3);
            }
        }
        this.vertices = vertices;
        this.triangles = triangles;
    }

    /** x0, y0, z0, x1, y1, z1, ... (a live array: do not modify). */
    public double[] vertices() {
        return vertices;
    }

    /** a0, b0, c0, a1, b1, c1, ... (a live array: do not modify). */
    public int[] triangles() {
        return triangles;
    }

    public int nVertices() {
        return vertices.length / 3;
    }

    public int nTriangles() {
        return triangles.length / 3;
    }

    /** Applies {@code v' = (v + offset - 0.5) * scale} per axis, as for every coordinate the bridge reads. */
    Mesh toPhysical(double[] offset, double[] scale) {
        double[] v = new double[vertices.length];
        for (int i = 0; i < v.length; i++) {
            int a = i % 3;
            v[i] = (vertices[i] + offset[a] - 0.5) * scale[a];
        }
        return new Mesh(v, triangles);
    }
}
