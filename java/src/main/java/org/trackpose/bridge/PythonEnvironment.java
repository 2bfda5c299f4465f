package org.trackpose.bridge;

import static org.trackpose.bridge.DetectorKeys.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Python that runs the engine: a python executable, a virtual environment folder, or a conda/mamba environment
 * run through {@code <conda> run -n ENV python ...} (no shell activation, which differs per OS and shell).
 *
 * <p>Commands are argument lists, never shell strings. {@link #check(Duration)} runs
 * {@code python -m trackpose --version} and says precisely what is wrong when it fails.
 */
public final class PythonEnvironment implements EngineCommand {

    public enum Kind {
        /** A python executable (a path, or a bare name looked up on PATH). */
        PYTHON,
        /** A virtual environment folder (bin/python, or Scripts\python.exe on Windows). */
        VENV,
        /** A conda / mamba / micromamba environment name (or prefix path). */
        CONDA
    }

    private final Kind kind;
    private final String location;
    private final String condaExecutable; // CONDA only; empty = detect
    private final boolean windows;
    private final CondaLocator locator;

    private PythonEnvironment(Kind kind, String location, String condaExecutable, boolean windows,
            CondaLocator locator) {
        this.kind = kind;
        this.location = location == null ? "" : location.trim();
        this.condaExecutable = condaExecutable == null ? "" : condaExecutable.trim();
        this.windows = windows;
        this.locator = locator;
    }

    public static PythonEnvironment python(String executable) {
        return new PythonEnvironment(Kind.PYTHON, executable, null, isWindowsHost(), null);
    }

    public static PythonEnvironment venv(Path folder) {
        return new PythonEnvironment(Kind.VENV, folder.toString(), null, isWindowsHost(), null);
    }

    /**
     * @param condaExecutable conda, mamba or micromamba; null or empty = detect with {@link CondaLocator#system()}
     * @param env             environment name, or a prefix path (then {@code -p} is used)
     */
    public static PythonEnvironment conda(String condaExecutable, String env) {
        return new PythonEnvironment(Kind.CONDA, env, condaExecutable, isWindowsHost(), null);
    }

    /** The environment the settings describe ({@code PYTHON_ENV_KIND} and friends). */
    public static PythonEnvironment fromSettings(DetectorSettings settings) {
        String kind = settings.text(KEY_PYTHON_ENV_KIND);
        switch (kind) {
            case ENV_PYTHON:
                return python(settings.text(KEY_PYTHON_ENV_PATH));
            case ENV_VENV:
                return venv(Paths.get(settings.text(KEY_PYTHON_ENV_PATH).trim()));
            case ENV_CONDA:
                return conda(settings.text(KEY_CONDA_EXECUTABLE), settings.text(KEY_CONDA_ENV));
            default:
                throw new IllegalArgumentException(KEY_PYTHON_ENV_KIND + " = \"" + kind + "\" is not one of "
                        + Arrays.asList(ENV_CONDA, ENV_VENV, ENV_PYTHON));
        }
    }

    /** The same environment laid out for another OS (for tests of Windows paths on POSIX and back). */
    public PythonEnvironment forWindows(boolean isWindows) {
        return new PythonEnvironment(kind, location, condaExecutable, isWindows, locator);
    }

    /** The same environment, detecting conda with this locator. */
    public PythonEnvironment withLocator(CondaLocator condaLocator) {
        return new PythonEnvironment(kind, location, condaExecutable, windows, condaLocator);
    }

    static boolean isWindowsHost() {
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("windows");
    }

    public Kind kind() {
        return kind;
    }

    public String location() {
        return location;
    }

    // ------------------------------------------------------------------ commands

    /** The venv's python: {@code bin/python} (POSIX) or {@code Scripts\python.exe} (Windows). */
    public Path venvPython() {
        Path folder = Paths.get(location);
        if (windows) {
            return folder.resolve("Scripts").resolve("python.exe");
        }
        Path python = folder.resolve("bin").resolve("python");
        Path python3 = folder.resolve("bin").resolve("python3");
        return !Files.exists(python) && Files.exists(python3) ? python3 : python;
    }

    /** The conda/mamba executable to use, detected when none was given. */
    public Path condaExecutable() throws BridgeException {
        if (!condaExecutable.isEmpty()) {
            return Paths.get(condaExecutable);
        }
        CondaLocator l = locator != null ? locator : CondaLocator.system();
        Optional<Path> found = l.locate();
        if (!found.isPresent()) {
            throw new BridgeException(BridgeException.Kind.ENVIRONMENT, "conda not found: looked at CONDA_EXE, "
                    + "MAMBA_EXE, the usual install folders (miniforge3, miniconda3, anaconda3, mambaforge, "
                    + "micromamba) and PATH. Give the conda executable in the settings ("
                    + KEY_CONDA_EXECUTABLE + "), or choose a venv or a python executable instead.");
        }
        return found.get();
    }

    private boolean isPlainConda(Path conda) {
        // split on both separators: a Windows path may be examined on any OS (and tests do)
        String full = conda.toString();
        String name = full.substring(Math.max(full.lastIndexOf('/'), full.lastIndexOf('\\')) + 1)
                .toLowerCase(Locale.ROOT);
        return name.equals("conda") || name.equals("conda.exe") || name.equals("conda.bat");
    }

    private boolean isPrefixPath(String env) {
        return env.contains("/") || env.contains("\\");
    }

    /** argv running {@code python ARGS...} in this environment. */
    public List<String> pythonCommand(String... args) throws BridgeException {
        List<String> argv = new ArrayList<>();
        switch (kind) {
            case PYTHON:
                argv.add(location);
                break;
            case VENV:
                argv.add(venvPython().toString());
                break;
            case CONDA: {
                Path conda = condaExecutable();
                argv.add(conda.toString());
                argv.add("run");
                if (isPlainConda(conda)) {
                    // conda run buffers the child's output until it exits unless told not to; live progress needs
                    // it streamed. mamba 2 / micromamba stream by default.
                    argv.add("--no-capture-output");
                }
                argv.add(isPrefixPath(location) ? "-p" : "-n");
                argv.add(location);
                argv.add("python");
                break;
            }
            default:
                throw new AssertionError(kind);
        }
        argv.addAll(Arrays.asList(args));
        return argv;
    }

    @Override
    public List<String> jobCommand(Path jobDir) throws BridgeException {
        return pythonCommand("-m", "trackpose", "job", jobDir.toString());
    }

    @Override
    public List<String> serveCommand() throws BridgeException {
        return pythonCommand("-m", "trackpose", "serve");
    }

    public List<String> versionCommand() throws BridgeException {
        return pythonCommand("-m", "trackpose", "--version");
    }

    @Override
    public Map<String, String> environment() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PYTHONUNBUFFERED", "1"); // events must arrive as they are printed
        env.put("PYTHONIOENCODING", "utf-8");
        return Collections.unmodifiableMap(env);
    }

    @Override
    public String describe() {
        switch (kind) {
            case PYTHON:
                return "python '" + location + "'";
            case VENV:
                return "virtual environment '" + location + "'";
            default:
                return "conda environment '" + location + "'";
        }
    }

    @Override
    public String toString() {
        return describe();
    }

    // ------------------------------------------------------------------ checking

    /** Runs {@code python -m trackpose --version} and diagnoses the answer. Never throws. */
    public EnvironmentCheck check(Duration timeout) {
        EnvironmentCheck pre = precheck();
        if (pre != null) {
            return pre;
        }
        List<String> argv;
        try {
            argv = versionCommand();
        } catch (BridgeException e) {
            return new EnvironmentCheck(EnvironmentCheck.Status.CONDA_NOT_FOUND, e.getMessage(), null,
                    Collections.emptyList(), "");
        }
        ShortRun run = ShortRun.run(argv, environment(), timeout);
        if (run.startError != null) {
            EnvironmentCheck.Status s = kind == Kind.CONDA ? EnvironmentCheck.Status.CONDA_NOT_FOUND
                    : EnvironmentCheck.Status.PYTHON_NOT_FOUND;
            return new EnvironmentCheck(s, "cannot start " + argv.get(0) + ": " + run.startError, null, argv, "");
        }
        if (run.timedOut) {
            return new EnvironmentCheck(EnvironmentCheck.Status.TIMEOUT, describe() + " did not answer "
                    + "'python -m trackpose --version' within " + timeout.getSeconds() + " s (stopped)", null, argv,
                    run.output);
        }
        return classify(run.exitCode, run.output, argv);
    }

    private EnvironmentCheck precheck() {
        switch (kind) {
            case PYTHON:
                if (location.isEmpty()) {
                    return notFound("no python executable given");
                }
                if (isPrefixPath(location) && !isFile(location)) {
                    return notFound("no python executable at '" + location + "'");
                }
                return null;
            case VENV: {
                if (location.isEmpty()) {
                    return notFound("no virtual environment folder given");
                }
                if (!isFolder(location)) {
                    return notFound("virtual environment folder '" + location + "' does not exist");
                }
                Path python = venvPython();
                if (!Files.isRegularFile(python)) {
                    return notFound("'" + location + "' is not a virtual environment: it has no "
                            + Paths.get(location).relativize(python));
                }
                return null;
            }
            default: {
                if (location.isEmpty()) {
                    return new EnvironmentCheck(EnvironmentCheck.Status.ENV_NOT_FOUND,
                            "no conda environment name given", null, Collections.emptyList(), "");
                }
                try {
                    Path conda = condaExecutable();
                    if (!Files.isRegularFile(conda)) {
                        return new EnvironmentCheck(EnvironmentCheck.Status.CONDA_NOT_FOUND, "conda executable '"
                                + conda + "' does not exist", null, Collections.emptyList(), "");
                    }
                } catch (BridgeException e) {
                    return new EnvironmentCheck(EnvironmentCheck.Status.CONDA_NOT_FOUND, e.getMessage(), null,
                            Collections.emptyList(), "");
                }
                return null;
            }
        }
    }

    private static boolean isFile(String s) {
        try {
            return Files.isRegularFile(Paths.get(s));
        } catch (InvalidPathException e) {
            return false;
        }
    }

    private static boolean isFolder(String s) {
        try {
            return Files.isDirectory(Paths.get(s));
        } catch (InvalidPathException e) {
            return false;
        }
    }

    private EnvironmentCheck notFound(String message) {
        return new EnvironmentCheck(EnvironmentCheck.Status.PYTHON_NOT_FOUND, message, null,
                Collections.emptyList(), "");
    }

    private static final Pattern VERSION = Pattern.compile("(\\d+\\.\\d+(?:\\.\\d+)?(?:[.+-]?[A-Za-z0-9]+)*)");
    private static final Pattern MISSING_MODULE = Pattern.compile("No module named '?([A-Za-z0-9_.]+)'?");

    private static final List<String> ENV_NOT_FOUND_SIGNS = Arrays.asList("environmentlocationnotfound",
            "could not find conda environment", "not a conda environment", "environmentnamenotfound",
            "prefix does not exist", "environment does not exist", "no such environment");
    private static final List<String> NO_PYTHON_SIGNS = Arrays.asList("python: command not found",
            "'python' is not recognized", "no such file or directory: 'python'",
            "executable file not found", "python: not found");

    /** Turns the answer to {@code python -m trackpose --version} into a diagnosis. */
    EnvironmentCheck classify(int exitCode, String output, List<String> argv) {
        String lower = output.toLowerCase(Locale.ROOT);
        if (kind == Kind.CONDA) {
            for (String sign : ENV_NOT_FOUND_SIGNS) {
                if (lower.contains(sign)) {
                    String known = "";
                    List<String> envs = listCondaEnvs();
                    if (!envs.isEmpty()) {
                        known = " Environments found: " + String.join(", ", envs) + ".";
                    }
                    return new EnvironmentCheck(EnvironmentCheck.Status.ENV_NOT_FOUND, "conda environment '"
                            + location + "' does not exist." + known + " Create it, or choose another one.", null,
                            argv, output);
                }
            }
            for (String sign : NO_PYTHON_SIGNS) {
                if (lower.contains(sign)) {
                    return new EnvironmentCheck(EnvironmentCheck.Status.PYTHON_NOT_FOUND, "conda environment '"
                            + location + "' has no python: install python and trackpose in it", null, argv, output);
                }
            }
        }
        Matcher m = MISSING_MODULE.matcher(output);
        while (m.find()) {
            String module = m.group(1);
            if (module.equals("trackpose")) {
                return new EnvironmentCheck(EnvironmentCheck.Status.TRACKPOSE_MISSING, "trackpose is not installed in "
                        + describe() + ": install it there (pip install trackpose)", null, argv, output);
            }
            if (module.startsWith("trackpose.__main__")) {
                return new EnvironmentCheck(EnvironmentCheck.Status.FAILED, "the trackpose installed in "
                        + describe() + " has no command line (trackpose.__main__): it is too old or broken; "
                        + "reinstall it", null, argv, output);
            }
            if (!module.startsWith("trackpose")) {
                return new EnvironmentCheck(EnvironmentCheck.Status.DEPENDENCY_MISSING, "trackpose is installed in "
                        + describe() + " but cannot start: module '" + module + "' is missing; reinstall "
                        + "trackpose's dependencies there", null, argv, output);
            }
        }
        if (exitCode == 0) {
            Matcher v = VERSION.matcher(output);
            if (v.find()) {
                return new EnvironmentCheck(EnvironmentCheck.Status.OK, "trackpose " + v.group(1) + " in "
                        + describe(), v.group(1), argv, output);
            }
            return new EnvironmentCheck(EnvironmentCheck.Status.FAILED, describe() + " answered "
                    + "'python -m trackpose --version' without a version: " + firstLine(output), null, argv, output);
        }
        return new EnvironmentCheck(EnvironmentCheck.Status.FAILED, "'python -m trackpose --version' failed in "
                + describe() + " (exit code " + exitCode + "): " + firstLine(lastLines(output, 5)), null, argv,
                output);
    }

    private static String firstLine(String s) {
        String t = s.trim();
        return t.isEmpty() ? "(no output)" : t;
    }

    private static String lastLines(String s, int n) {
        String[] lines = s.trim().split("\\R");
        return String.join("\n", Arrays.asList(lines).subList(Math.max(0, lines.length - n), lines.length));
    }

    /** Names of the conda environments the conda executable knows (best effort; empty on any problem). */
    public List<String> listCondaEnvs() {
        if (kind != Kind.CONDA) {
            return Collections.emptyList();
        }
        try {
            Path conda = condaExecutable();
            ShortRun run = ShortRun.run(Arrays.asList(conda.toString(), "env", "list", "--json"),
                    Collections.emptyMap(), Duration.ofSeconds(30));
            if (run.startError != null || run.timedOut || run.exitCode != 0) {
                return Collections.emptyList();
            }
            String out = run.stdout.trim();
            int brace = out.indexOf('{');
            Map<String, Object> json = Json.parseObject(brace > 0 ? out.substring(brace) : out);
            List<String> names = new ArrayList<>();
            Object envs = json.get("envs");
            if (envs instanceof List) {
                for (Object e : (List<?>) envs) {
                    Path p = Paths.get(e.toString());
                    Path parent = p.getParent();
                    boolean named = parent != null && parent.getFileName() != null
                            && parent.getFileName().toString().equals("envs");
                    names.add(named ? p.getFileName().toString() : "base");
                }
            }
            return names;
        } catch (BridgeException | RuntimeException e) {
            return Collections.emptyList();
        }
    }

    /** A short command run to completion (or its time limit), with its output kept. */
    static final class ShortRun {
        String startError;
        boolean timedOut;
        int exitCode = -1;
        String stdout = "";
        String output = ""; // stdout then stderr

        static ShortRun run(List<String> argv, Map<String, String> env, Duration timeout) {
            ShortRun r = new ShortRun();
            ProcessBuilder pb = new ProcessBuilder(argv);
            pb.environment().putAll(env);
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                r.startError = e.getMessage();
                return r;
            }
            Cleanup.register(p);
            try {
                p.getOutputStream().close();
            } catch (IOException ignored) {
                // nothing to close
            }
            TailBuffer out = new TailBuffer(200, 32 * 1024);
            TailBuffer err = new TailBuffer(200, 32 * 1024);
            Thread t1 = EngineOutput.pump(p.getInputStream(), out::add, "trackpose-check-stdout");
            Thread t2 = EngineOutput.pump(p.getErrorStream(), err::add, "trackpose-check-stderr");
            try {
                if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    r.timedOut = true;
                    ProcessTree.kill(p);
                } else {
                    r.exitCode = p.exitValue();
                }
                t1.join(2000);
                t2.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                ProcessTree.kill(p);
                r.timedOut = true;
            } finally {
                Cleanup.unregister(p);
            }
            r.stdout = out.text();
            r.output = out.text() + err.text();
            return r;
        }
    }
}
