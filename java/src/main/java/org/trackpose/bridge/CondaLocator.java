package org.trackpose.bridge;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Finds a conda, mamba or micromamba executable where TrackMate's users have one: the {@code CONDA_EXE} and
 * {@code MAMBA_EXE} variables set by an activated shell, the usual install folders (miniforge, mambaforge,
 * miniconda, anaconda, micromamba; user, system and Homebrew locations), then {@code PATH}.
 *
 * <p>Everything it looks at is given to it (environment, home, OS), so tests can build a fake file system.
 */
public final class CondaLocator {

    private static final List<String> DISTRIBUTIONS = Arrays.asList(
            "miniforge3", "mambaforge", "miniconda3", "anaconda3", "miniconda", "anaconda", "micromamba");

    private final Map<String, String> env;
    private final Path home;
    private final boolean windows;

    public CondaLocator(Map<String, String> env, Path home, boolean windows) {
        this.env = env;
        this.home = home;
        this.windows = windows;
    }

    /** A locator for this machine. */
    public static CondaLocator system() {
        return new CondaLocator(System.getenv(), Paths.get(System.getProperty("user.home", ".")),
                PythonEnvironment.isWindowsHost());
    }

    /** The first candidate that is an executable file. */
    public Optional<Path> locate() {
        for (Path p : candidates()) {
            if (isExecutable(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** Every place looked at, in order (for "conda not found; looked in ..." messages). */
    public List<Path> candidates() {
        Set<Path> out = new LinkedHashSet<>();
        addVariable(out, "CONDA_EXE");
        addVariable(out, "MAMBA_EXE");
        for (Path root : installRoots()) {
            if (windows) {
                out.add(root.resolve("Scripts").resolve("conda.exe"));
                out.add(root.resolve("condabin").resolve("conda.bat"));
                out.add(root.resolve("Library").resolve("bin").resolve("micromamba.exe"));
            } else {
                out.add(root.resolve("condabin").resolve("conda"));
                out.add(root.resolve("bin").resolve("conda"));
                out.add(root.resolve("bin").resolve("mamba"));
                out.add(root.resolve("bin").resolve("micromamba"));
            }
        }
        if (!windows) {
            out.add(home.resolve(".local").resolve("bin").resolve("micromamba"));
        }
        String path = env.get("PATH");
        if (path == null) {
            path = env.get("Path");
        }
        if (path != null) {
            for (String dir : path.split(windows ? ";" : File.pathSeparator)) {
                if (dir.trim().isEmpty()) {
                    continue;
                }
                Path d;
                try {
                    d = Paths.get(dir.trim());
                } catch (InvalidPathException e) {
                    continue;
                }
                for (String name : Arrays.asList("conda", "mamba", "micromamba")) {
                    if (windows) {
                        out.add(d.resolve(name + ".exe"));
                        out.add(d.resolve(name + ".bat"));
                    } else {
                        out.add(d.resolve(name));
                    }
                }
            }
        }
        return new ArrayList<>(out);
    }

    private void addVariable(Set<Path> out, String name) {
        String v = env.get(name);
        if (v != null && !v.trim().isEmpty()) {
            try {
                out.add(Paths.get(v.trim()));
            } catch (InvalidPathException ignored) {
                // a variable that is not a path is no candidate
            }
        }
    }

    private List<Path> installRoots() {
        List<Path> roots = new ArrayList<>();
        for (String d : DISTRIBUTIONS) {
            roots.add(home.resolve(d));
            roots.add(home.resolve("." + d));
        }
        if (windows) {
            for (String var : Arrays.asList("LOCALAPPDATA", "ProgramData", "ProgramFiles")) {
                String base = env.get(var);
                if (base != null && !base.isEmpty()) {
                    for (String d : DISTRIBUTIONS) {
                        roots.add(Paths.get(base, d));
                    }
                }
            }
        } else {
            for (String base : Arrays.asList("/opt", "/usr/local", "/opt/homebrew", "/opt/homebrew/Caskroom/miniforge",
                    "/usr/local/Caskroom/miniforge")) {
                for (String d : DISTRIBUTIONS) {
                    roots.add(Paths.get(base, d));
                }
            }
            roots.add(Paths.get("/opt/conda"));
            roots.add(Paths.get("/opt/homebrew/Caskroom/miniforge/base"));
            roots.add(Paths.get("/usr/local/Caskroom/miniforge/base"));
        }
        return roots;
    }

    private boolean isExecutable(Path p) {
        return Files.isRegularFile(p) && (windows || Files.isExecutable(p));
    }
}
