package net.imglib2.mesh.impl.nio;

import java.nio.BufferOverflowException;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import net.imglib2.mesh.Mesh;

/**
 * API stub (imglib2-mesh 1.1.0, net/imglib2/mesh/impl/nio/BufferMesh.java): a mesh in NIO buffers whose capacity is
 * fixed by the constructor ({@code vertexMax} vertices, {@code triangleMax} triangles); adding more overflows, as in
 * the real class. The members the TrackMate 9 adapter and its tests use; minimal working behaviour for the tests
 * (vertex positions and triangle indices are stored; normals are stored but never computed). The inner classes'
 * constructors are private here: the adapter never calls them.
 */
public class BufferMesh implements Mesh {

    private final Vertices vertices;
    private final Triangles triangles;

    public BufferMesh(final int vertexMax, final int triangleMax) {
        vertices = new Vertices(FloatBuffer.allocate(vertexMax * 3), FloatBuffer.allocate(vertexMax * 3));
        triangles = new Triangles(IntBuffer.allocate(triangleMax * 3), FloatBuffer.allocate(triangleMax * 3));
    }

    @Override
    public Vertices vertices() {
        return vertices;
    }

    @Override
    public Triangles triangles() {
        return triangles;
    }

    /** The vertex table (the real one also holds texture coordinates). */
    public class Vertices implements net.imglib2.mesh.Vertices {

        private final FloatBuffer verts;
        private final FloatBuffer normals;

        private Vertices(final FloatBuffer verts, final FloatBuffer normals) {
            this.verts = verts;
            this.normals = normals;
        }

        @Override
        public Mesh mesh() {
            return BufferMesh.this;
        }

        @Override
        public long sizel() {
            return verts.position() / 3;
        }

        @Override
        public float xf(final long vIndex) {
            return verts.get((int) (3 * vIndex));
        }

        @Override
        public float yf(final long vIndex) {
            return verts.get((int) (3 * vIndex + 1));
        }

        @Override
        public float zf(final long vIndex) {
            return verts.get((int) (3 * vIndex + 2));
        }

        @Override
        public long addf(final float x, final float y, final float z, final float nx, final float ny, final float nz,
                final float u, final float v) {
            if (verts.remaining() < 3) {
                throw new BufferOverflowException();
            }
            long index = sizel();
            verts.put(x).put(y).put(z);
            normals.put(nx).put(ny).put(nz);
            return index;
        }

        @Override
        public void setPositionf(final long vIndex, final float x, final float y, final float z) {
            int i = (int) (3 * vIndex);
            verts.put(i, x).put(i + 1, y).put(i + 2, z);
        }
    }

    /** The triangle table: three vertex indices and a normal per triangle. */
    public class Triangles implements net.imglib2.mesh.Triangles {

        private final IntBuffer indices;
        private final FloatBuffer normals;

        private Triangles(final IntBuffer indices, final FloatBuffer normals) {
            this.indices = indices;
            this.normals = normals;
        }

        @Override
        public Mesh mesh() {
            return BufferMesh.this;
        }

        @Override
        public long sizel() {
            return indices.position() / 3;
        }

        @Override
        public long vertex0(final long tIndex) {
            return indices.get((int) (3 * tIndex));
        }

        @Override
        public long vertex1(final long tIndex) {
            return indices.get((int) (3 * tIndex + 1));
        }

        @Override
        public long vertex2(final long tIndex) {
            return indices.get((int) (3 * tIndex + 2));
        }

        @Override
        public long addf(final long v0, final long v1, final long v2, final float nx, final float ny, final float nz) {
            if (indices.remaining() < 3) {
                throw new BufferOverflowException();
            }
            long index = sizel();
            indices.put((int) v0).put((int) v1).put((int) v2);
            normals.put(nx).put(ny).put(nz);
            return index;
        }
    }
}
