package org.trackpose.bridge;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Reads a triangle mesh from a PLY file (binary little/big endian or ASCII): element {@code vertex} with properties
 * x, y, z (any numeric type; other properties skipped) and element {@code face} with a list property
 * {@code vertex_indices} (or {@code vertex_index}); polygons with more than three vertices are split into a fan.
 */
public final class PlyReader {

    private PlyReader() {
    }

    private static final class Property {
        String name;
        String type;
        String countType; // non-null for list properties
    }

    private static final class Element {
        String name;
        long count;
        List<Property> properties = new ArrayList<>();
    }

    public static Mesh read(Path file) throws IOException {
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            return read(raw, file.toString());
        }
    }

    static Mesh read(InputStream in, String where) throws IOException {
        String magic = readLine(in);
        if (!"ply".equals(magic)) {
            throw new IOException(where + ": not a PLY file");
        }
        String format = null;
        List<Element> elements = new ArrayList<>();
        while (true) {
            String line = readLine(in);
            if (line == null) {
                throw new IOException(where + ": PLY header has no end_header");
            }
            String[] w = line.trim().split("\\s+");
            if (w.length == 0 || w[0].isEmpty() || w[0].equals("comment") || w[0].equals("obj_info")) {
                continue;
            }
            if (w[0].equals("end_header")) {
                break;
            }
            switch (w[0]) {
                case "format":
                    format = w[1];
                    break;
                case "element": {
                    Element e = new Element();
                    e.name = w[1];
                    e.count = Long.parseLong(w[2]);
                    elements.add(e);
                    break;
                }
                case "property": {
                    if (elements.isEmpty()) {
                        throw new IOException(where + ": PLY property before any element");
                    }
                    Property p = new Property();
                    if (w[1].equals("list")) {
                        p.countType = w[2];
                        p.type = w[3];
                        p.name = w[4];
                    } else {
                        p.type = w[1];
                        p.name = w[2];
                    }
                    elements.get(elements.size() - 1).properties.add(p);
                    break;
                }
                default:
                    throw new IOException(where + ": unexpected PLY header line '" + line + "'");
            }
        }
        if (format == null) {
            throw new IOException(where + ": PLY header has no format");
        }
        ValueSource src;
        switch (format) {
            case "ascii":
                src = new AsciiSource(in);
                break;
            case "binary_little_endian":
                src = new BinarySource(in, ByteOrder.LITTLE_ENDIAN);
                break;
            case "binary_big_endian":
                src = new BinarySource(in, ByteOrder.BIG_ENDIAN);
                break;
            default:
                throw new IOException(where + ": unknown PLY format " + format);
        }
        double[] vertices = null;
        List<Integer> tris = new ArrayList<>();
        for (Element e : elements) {
            boolean isVertex = e.name.equals("vertex");
            boolean isFace = e.name.equals("face");
            if (isVertex) {
                if (e.count > Integer.MAX_VALUE / 3) {
                    throw new IOException(where + ": too many vertices");
                }
                vertices = new double[(int) e.count * 3];
            }
            for (long i = 0; i < e.count; i++) {
                for (Property p : e.properties) {
                    if (p.countType != null) {
                        int n = (int) src.next(p.countType);
                        int[] idx = new int[n];
                        for (int k = 0; k < n; k++) {
                            idx[k] = (int) src.next(p.type);
                        }
                        if (isFace && (p.name.equals("vertex_indices") || p.name.equals("vertex_index"))) {
                            for (int k = 1; k + 1 < n; k++) {
                                tris.add(idx[0]);
                                tris.add(idx[k]);
                                tris.add(idx[k + 1]);
                            }
                        }
                    } else {
                        double v = src.next(p.type);
                        if (isVertex) {
                            int axis = p.name.equals("x") ? 0 : p.name.equals("y") ? 1 : p.name.equals("z") ? 2 : -1;
                            if (axis >= 0) {
                                vertices[(int) i * 3 + axis] = v;
                            }
                        }
                    }
                }
            }
        }
        if (vertices == null) {
            throw new IOException(where + ": PLY file has no vertex element");
        }
        int[] t = new int[tris.size()];
        for (int i = 0; i < t.length; i++) {
            t[i] = tris.get(i);
        }
        try {
            return new Mesh(vertices, t);
        } catch (IllegalArgumentException e) {
            throw new IOException(where + ": " + e.getMessage(), e);
        }
    }

    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) != -1 && c != '\n') {
            if (c != '\r') {
                b.write(c);
            }
            if (b.size() > 4096) {
                throw new IOException("PLY header line too long");
            }
        }
        if (c == -1 && b.size() == 0) {
            return null;
        }
        return new String(b.toByteArray(), StandardCharsets.US_ASCII);
    }

    private interface ValueSource {
        double next(String type) throws IOException;
    }

    private static final class BinarySource implements ValueSource {
        private final DataInputStream in;
        private final ByteOrder order;
        private final byte[] buf = new byte[8];

        BinarySource(InputStream in, ByteOrder order) {
            this.in = new DataInputStream(in);
            this.order = order;
        }

        private ByteBuffer take(int n) throws IOException {
            try {
                in.readFully(buf, 0, n);
            } catch (EOFException e) {
                throw new IOException("PLY file is truncated", e);
            }
            return ByteBuffer.wrap(buf, 0, n).order(order);
        }

        @Override
        public double next(String type) throws IOException {
            switch (type.toLowerCase(Locale.ROOT)) {
                case "char":
                case "int8":
                    return take(1).get();
                case "uchar":
                case "uint8":
                    return take(1).get() & 0xff;
                case "short":
                case "int16":
                    return take(2).getShort();
                case "ushort":
                case "uint16":
                    return take(2).getShort() & 0xffff;
                case "int":
                case "int32":
                    return take(4).getInt();
                case "uint":
                case "uint32":
                    return take(4).getInt() & 0xffffffffL;
                case "float":
                case "float32":
                    return take(4).getFloat();
                case "double":
                case "float64":
                    return take(8).getDouble();
                default:
                    throw new IOException("unknown PLY type " + type);
            }
        }
    }

    private static final class AsciiSource implements ValueSource {
        private final InputStream in;

        AsciiSource(InputStream in) {
            this.in = in;
        }

        @Override
        public double next(String type) throws IOException {
            StringBuilder sb = new StringBuilder();
            int c;
            while ((c = in.read()) != -1 && Character.isWhitespace(c)) {
                // skip
            }
            while (c != -1 && !Character.isWhitespace(c)) {
                sb.append((char) c);
                c = in.read();
            }
            if (sb.length() == 0) {
                throw new IOException("PLY file is truncated");
            }
            try {
                return Double.parseDouble(sb.toString());
            } catch (NumberFormatException e) {
                throw new IOException("PLY value '" + sb + "' is not a number", e);
            }
        }
    }
}
