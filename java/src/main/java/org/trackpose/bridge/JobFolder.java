package org.trackpose.bridge;

import ij.ImagePlus;
import ij.io.FileInfo;
import ij.io.FileSaver;
import ij.io.TiffEncoder;
import ij.measure.Calibration;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One job's folder (bridge protocol v1): a unique, private temporary folder holding input.tif and job.json, where the
 * engine writes labels.tif and shapes.json. Closing it deletes it, unless it is kept (for debugging).
 *
 * <pre>
 * try (JobFolder job = JobFolder.create(null, false)) {
 *     job.writeInput(input.image());
 *     job.writeJob(JobFolder.jobJson(settings, input));
 *     ... run the engine on job.path(), read the results ...
 * }
 * </pre>
 */
public final class JobFolder implements AutoCloseable {

    public static final int PROTOCOL_VERSION = 1;
    public static final String INPUT = "input.tif";
    public static final String JOB = "job.json";
    public static final String LABELS = "labels.tif";
    public static final String SHAPES = "shapes.json";

    private final Path path;
    private volatile boolean keep;
    private volatile boolean closed;

    private JobFolder(Path path, boolean keep) {
        this.path = path;
        this.keep = keep;
    }

    /**
     * Creates a new folder {@code trackpose-job-*} under {@code parent} (null = the system temp folder), readable
     * by its owner only where the file system has POSIX permissions.
     */
    public static JobFolder create(Path parent, boolean keep) throws BridgeException {
        try {
            Path dir;
            boolean posix = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
            if (parent == null) {
                dir = posix ? Files.createTempDirectory("trackpose-job-",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
                        : Files.createTempDirectory("trackpose-job-");
            } else {
                Files.createDirectories(parent);
                dir = posix ? Files.createTempDirectory(parent, "trackpose-job-",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")))
                        : Files.createTempDirectory(parent, "trackpose-job-");
            }
            if (posix) {
                // the umask may have removed bits we asked for, never added any; set them exactly anyway
                Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            }
            JobFolder folder = new JobFolder(dir, keep);
            if (!keep) {
                Cleanup.register(dir);
            }
            return folder;
        } catch (IOException | RuntimeException e) {
            throw new BridgeException(BridgeException.Kind.IO, "cannot create a job folder in "
                    + (parent == null ? System.getProperty("java.io.tmpdir") : parent) + ": " + e, e);
        }
    }

    public Path path() {
        return path;
    }

    public Path file(String name) {
        return path.resolve(name);
    }

    public boolean isKept() {
        return keep;
    }

    public void setKeep(boolean keep) {
        this.keep = keep;
        if (keep) {
            Cleanup.unregister(path);
        } else if (!closed) {
            Cleanup.register(path);
        }
    }

    /** Writes input.tif as an ImageJ hyperstack TIFF with the image's calibration. */
    public void writeInput(ImagePlus image) throws BridgeException {
        Path target = file(INPUT);
        try {
            writeTiff(image, target);
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.IO, "cannot write " + target + " (" + e
                    + "); is the disk full? Free space or choose another temporary folder", e);
        }
    }

    /**
     * Writes an image as ImageJ does (File > Save As > Tiff), but through a stream so that a write error (a full
     * disk) arrives as an exception instead of a dialog.
     */
    static void writeTiff(ImagePlus image, Path target) throws IOException {
        FileSaver saver = new FileSaver(image);
        FileInfo fi = image.getFileInfo();
        fi.description = saver.getDescriptionString();
        fi.info = image.getInfoProperty();
        if (image.getStackSize() > 1) {
            fi.sliceLabels = image.getStack().getSliceLabels();
        }
        Path part = target.resolveSibling(target.getFileName() + ".part");
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(part), 1 << 16)) {
            new TiffEncoder(fi).write(out);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(part);
            throw e instanceof IOException ? (IOException) e : new IOException(e.toString(), e);
        }
        Files.move(part, target, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Writes job.json. */
    public void writeJob(Map<String, Object> job) throws BridgeException {
        Path target = file(JOB);
        try {
            Files.write(target, (Json.writePretty(job) + "\n").getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.IO, "cannot write " + target + " (" + e
                    + "); is the disk full?", e);
        }
    }

    /** The job.json object for these settings and this input (protocol v1). */
    public static Map<String, Object> jobJson(DetectorSettings settings, JobInput input) {
        Map<String, Object> job = new LinkedHashMap<>();
        job.put("version", PROTOCOL_VERSION);
        job.put("frames", input.frames());
        job.put("calibration", calibrationJson(input.calibration()));
        job.put("settings", settings.toJobSettings(input.calibration()));
        job.put("outputs", settings.jobOutputs());
        return job;
    }

    static Map<String, Object> calibrationJson(Calibration cal) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("x", cal.pixelWidth);
        c.put("y", cal.pixelHeight);
        c.put("z", cal.pixelDepth);
        c.put("unit", cal.getUnit());
        return c;
    }

    /**
     * Throws unless the outputs job.json asks for are there: labels.tif always, shapes.json unless
     * {@code outputs.shapes} is false. Called after the engine reported success.
     */
    public void requireOutputs(String engineMessage) throws BridgeException {
        boolean shapes = true;
        try {
            Map<String, Object> job = Json.parseObject(new String(Files.readAllBytes(file(JOB)),
                    StandardCharsets.UTF_8));
            Object outputs = job.get("outputs");
            if (outputs instanceof Map && Boolean.FALSE.equals(((Map<?, ?>) outputs).get("shapes"))) {
                shapes = false;
            }
        } catch (IOException | RuntimeException e) {
            // job.json unreadable: ask for everything
        }
        for (String name : shapes ? List.of(LABELS, SHAPES) : List.of(LABELS)) {
            Path f = file(name);
            try {
                if (!Files.isRegularFile(f) || Files.size(f) == 0) {
                    throw new BridgeException(BridgeException.Kind.OUTPUT, "the engine reported success but "
                            + name + " is " + (Files.exists(f) ? "empty" : "missing") + " in " + path
                            + (engineMessage.isEmpty() ? "" : "; engine said: " + engineMessage));
                }
            } catch (IOException e) {
                throw new BridgeException(BridgeException.Kind.OUTPUT, "cannot read " + f + ": " + e, e);
            }
        }
    }

    /** Deletes the folder and everything in it, unless kept. Safe to call twice. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (keep) {
            Cleanup.unregister(path);
            return;
        }
        if (deleteRecursively(path)) {
            Cleanup.unregister(path);
        } // else: still registered, the shutdown hook tries again (a file held open on Windows)
    }

    public boolean isClosed() {
        return closed;
    }

    /** Deletes a folder tree; true when nothing is left. */
    static boolean deleteRecursively(Path root) {
        if (!Files.exists(root)) {
            return true;
        }
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<Path>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.deleteIfExists(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                    Files.deleteIfExists(dir);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            return !Files.exists(root);
        }
        return !Files.exists(root);
    }

    @Override
    public String toString() {
        return path.toString();
    }
}
