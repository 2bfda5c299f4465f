package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PythonEnvironmentTest {

    private static final Path JOB = Paths.get("/tmp/trackpose-job-123");

    private static Path executable(Path file, String script) throws Exception {
        Files.createDirectories(file.getParent());
        Files.write(file, script.getBytes(StandardCharsets.UTF_8));
        if (!PythonEnvironment.isWindowsHost()) {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
        }
        return file;
    }

    // ------------------------------------------------------------------ argv lists

    @Test
    void pythonExecutableCommands() throws Exception {
        PythonEnvironment env = PythonEnvironment.python("/opt/py/bin/python3");
        assertEquals(List.of("/opt/py/bin/python3", "-m", "trackpose", "job", JOB.toString()), env.jobCommand(JOB));
        assertEquals(List.of("/opt/py/bin/python3", "-m", "trackpose", "serve"), env.serveCommand());
        assertEquals(List.of("/opt/py/bin/python3", "-m", "trackpose", "--version"), env.versionCommand());
    }

    @Test
    void venvCommandsPosixAndWindowsLayouts() throws Exception {
        Path venv = Paths.get("/home/me/venvs/tp");
        PythonEnvironment posix = PythonEnvironment.venv(venv).forWindows(false);
        assertEquals(List.of(venv.resolve("bin").resolve("python").toString(), "-m", "trackpose", "job",
                JOB.toString()), posix.jobCommand(JOB));
        PythonEnvironment windows = PythonEnvironment.venv(venv).forWindows(true);
        assertEquals(List.of(venv.resolve("Scripts").resolve("python.exe").toString(), "-m", "trackpose", "serve"),
                windows.serveCommand());
    }

    @Test
    void venvWithOnlyPython3UsesIt(@TempDir Path dir) throws Exception {
        Path python3 = executable(dir.resolve("bin").resolve("python3"), "#!/bin/sh\n");
        assertEquals(python3, PythonEnvironment.venv(dir).forWindows(false).venvPython());
    }

    @Test
    void condaRunCommandStreamsOutputAndNeedsNoShell() throws Exception {
        PythonEnvironment env = PythonEnvironment.conda("/opt/miniforge3/condabin/conda", "trackpose");
        assertEquals(List.of("/opt/miniforge3/condabin/conda", "run", "--no-capture-output", "-n", "trackpose",
                "python", "-m", "trackpose", "job", JOB.toString()), env.jobCommand(JOB));
        // Windows conda.exe gets the same flag
        PythonEnvironment win = PythonEnvironment.conda("C:\\miniconda3\\Scripts\\conda.exe", "tp").forWindows(true);
        assertEquals(List.of("C:\\miniconda3\\Scripts\\conda.exe", "run", "--no-capture-output", "-n", "tp",
                "python", "-m", "trackpose", "serve"), win.serveCommand());
    }

    @Test
    void mambaAndMicromambaAndPrefixEnvironments() throws Exception {
        assertEquals(List.of("/usr/bin/micromamba", "run", "-n", "tp", "python", "-m", "trackpose", "--version"),
                PythonEnvironment.conda("/usr/bin/micromamba", "tp").versionCommand());
        assertEquals(List.of("/opt/mambaforge/bin/mamba", "run", "-n", "tp", "python", "-m", "trackpose", "serve"),
                PythonEnvironment.conda("/opt/mambaforge/bin/mamba", "tp").serveCommand());
        assertEquals(List.of("/opt/conda/bin/conda", "run", "--no-capture-output", "-p", "/data/envs/tp", "python",
                "-m", "trackpose", "serve"), PythonEnvironment.conda("/opt/conda/bin/conda", "/data/envs/tp")
                        .serveCommand());
    }

    @Test
    void environmentFromSettings() throws Exception {
        DetectorSettings s = DetectorSettings.defaults();
        s.set(DetectorKeys.KEY_CONDA_EXECUTABLE, "/opt/conda/bin/conda").set(DetectorKeys.KEY_CONDA_ENV, "cp");
        assertEquals(List.of("/opt/conda/bin/conda", "run", "--no-capture-output", "-n", "cp", "python", "-m",
                "trackpose", "serve"), PythonEnvironment.fromSettings(s).serveCommand());
        s.set(DetectorKeys.KEY_PYTHON_ENV_KIND, DetectorKeys.ENV_PYTHON).set(DetectorKeys.KEY_PYTHON_ENV_PATH,
                "/usr/bin/python3");
        assertEquals(List.of("/usr/bin/python3", "-m", "trackpose", "serve"),
                PythonEnvironment.fromSettings(s).serveCommand());
        s.set(DetectorKeys.KEY_PYTHON_ENV_KIND, DetectorKeys.ENV_VENV).set(DetectorKeys.KEY_PYTHON_ENV_PATH, "/v");
        assertEquals(PythonEnvironment.Kind.VENV, PythonEnvironment.fromSettings(s).kind());
    }

    @Test
    void pythonGetsUnbufferedUtf8Output() {
        Map<String, String> env = PythonEnvironment.python("python3").environment();
        assertEquals("1", env.get("PYTHONUNBUFFERED"));
        assertEquals("utf-8", env.get("PYTHONIOENCODING"));
    }

    // ------------------------------------------------------------------ conda detection

    @Test
    void condaDetectionOrder(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path home = dir.resolve("home");
        Path fromVariable = executable(dir.resolve("active").resolve("bin").resolve("conda"), "#!/bin/sh\n");
        Path installed = executable(home.resolve("miniforge3").resolve("condabin").resolve("conda"), "#!/bin/sh\n");
        Path onPath = executable(dir.resolve("pathdir").resolve("micromamba"), "#!/bin/sh\n");
        Map<String, String> vars = new HashMap<>();
        vars.put("PATH", dir.resolve("pathdir").toString());
        vars.put("CONDA_EXE", fromVariable.toString());
        assertEquals(fromVariable, new CondaLocator(vars, home, false).locate().get(), "CONDA_EXE first");
        vars.remove("CONDA_EXE");
        assertEquals(installed, new CondaLocator(vars, home, false).locate().get(), "then install folders");
        Files.delete(installed);
        assertEquals(onPath, new CondaLocator(vars, home, false).locate().get(), "then PATH");
        vars.remove("PATH");
        assertFalse(new CondaLocator(vars, home, false).locate().isPresent());
        // a variable pointing nowhere is skipped
        vars.put("CONDA_EXE", dir.resolve("gone").toString());
        assertFalse(new CondaLocator(vars, home, false).locate().isPresent());
    }

    @Test
    void windowsCandidatesUseScriptsAndExe() {
        Map<String, String> vars = new HashMap<>();
        vars.put("LOCALAPPDATA", "C:\\Users\\me\\AppData\\Local");
        vars.put("PATH", "C:\\tools");
        List<Path> c = new CondaLocator(vars, Paths.get("C:\\Users\\me"), true).candidates();
        assertTrue(c.contains(Paths.get("C:\\Users\\me").resolve("miniconda3").resolve("Scripts").resolve("conda.exe")));
        assertTrue(c.contains(Paths.get("C:\\Users\\me\\AppData\\Local", "miniforge3").resolve("Scripts")
                .resolve("conda.exe")));
        assertTrue(c.contains(Paths.get("C:\\tools").resolve("conda.exe")));
    }

    @Test
    void detectedCondaIsUsedInTheCommand(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path conda = executable(dir.resolve("anaconda3").resolve("bin").resolve("conda"), "#!/bin/sh\n");
        PythonEnvironment env = PythonEnvironment.conda("", "tp").withLocator(new CondaLocator(Map.of(), dir, false));
        assertEquals(List.of(conda.toString(), "run", "--no-capture-output", "-n", "tp", "python", "-m", "trackpose",
                "serve"), env.serveCommand());
        PythonEnvironment none = PythonEnvironment.conda(null, "tp").withLocator(
                new CondaLocator(Map.of(), dir.resolve("empty"), false));
        BridgeException e = assertThrows(BridgeException.class, none::serveCommand);
        assertEquals(BridgeException.Kind.ENVIRONMENT, e.kind());
        assertTrue(e.getMessage().startsWith("conda not found"), e.getMessage());
        assertEquals(EnvironmentCheck.Status.CONDA_NOT_FOUND, none.check(Duration.ofSeconds(5)).status());
    }

    // ------------------------------------------------------------------ diagnosis, with real child processes

    @Test
    void missingPythonIsDiagnosed(@TempDir Path dir) {
        EnvironmentCheck c = PythonEnvironment.python(dir.resolve("no-python").toString()).check(Duration.ofSeconds(5));
        assertEquals(EnvironmentCheck.Status.PYTHON_NOT_FOUND, c.status());
        assertTrue(c.message().contains("no python executable at"), c.message());
        EnvironmentCheck bare = PythonEnvironment.python("surely-no-such-python-3.99").check(Duration.ofSeconds(5));
        assertEquals(EnvironmentCheck.Status.PYTHON_NOT_FOUND, bare.status());
        assertTrue(bare.message().startsWith("cannot start surely-no-such-python-3.99"), bare.message());
    }

    @Test
    void venvProblemsAreDiagnosed(@TempDir Path dir) throws Exception {
        EnvironmentCheck missing = PythonEnvironment.venv(dir.resolve("nope")).check(Duration.ofSeconds(5));
        assertEquals(EnvironmentCheck.Status.PYTHON_NOT_FOUND, missing.status());
        assertTrue(missing.message().endsWith("does not exist"), missing.message());
        Files.createDirectories(dir.resolve("empty"));
        EnvironmentCheck empty = PythonEnvironment.venv(dir.resolve("empty")).check(Duration.ofSeconds(5));
        assertEquals(EnvironmentCheck.Status.PYTHON_NOT_FOUND, empty.status());
        assertTrue(empty.message().contains("is not a virtual environment"), empty.message());
    }

    @Test
    void versionAnswerIsOk(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path venv = dir.resolve("venv");
        executable(venv.resolve("bin").resolve("python"),
                "#!/bin/sh\n[ \"$1 $2 $3\" = \"-m trackpose --version\" ] || exit 9\necho 'trackpose 0.1.0'\n");
        EnvironmentCheck c = PythonEnvironment.venv(venv).check(Duration.ofSeconds(10));
        assertEquals(EnvironmentCheck.Status.OK, c.status(), c.toString());
        assertEquals("0.1.0", c.version());
        assertTrue(c.ok());
        c.requireOk();
    }

    @Test
    void trackposeMissingIsDiagnosed(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path py = executable(dir.resolve("python"), "#!/bin/sh\necho \"$0: No module named trackpose\" >&2\nexit 1\n");
        EnvironmentCheck c = PythonEnvironment.python(py.toString()).check(Duration.ofSeconds(10));
        assertEquals(EnvironmentCheck.Status.TRACKPOSE_MISSING, c.status(), c.toString());
        assertTrue(c.message().startsWith("trackpose is not installed in python '"), c.message());
        BridgeException e = assertThrows(BridgeException.class, c::requireOk);
        assertEquals(c.message(), e.getMessage());
    }

    @Test
    void missingDependencyIsDiagnosed(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path py = executable(dir.resolve("python"), "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
                + "echo \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n");
        EnvironmentCheck c = PythonEnvironment.python(py.toString()).check(Duration.ofSeconds(10));
        assertEquals(EnvironmentCheck.Status.DEPENDENCY_MISSING, c.status(), c.toString());
        assertTrue(c.message().contains("module 'torch' is missing"), c.message());
    }

    @Test
    void otherFailuresCarryTheOutput(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path py = executable(dir.resolve("python"), "#!/bin/sh\necho 'Fatal Python error: init failed' >&2\nexit 7\n");
        EnvironmentCheck c = PythonEnvironment.python(py.toString()).check(Duration.ofSeconds(10));
        assertEquals(EnvironmentCheck.Status.FAILED, c.status());
        assertTrue(c.message().contains("exit code 7"), c.message());
        assertTrue(c.message().contains("Fatal Python error: init failed"), c.message());
    }

    @Test
    void hangingPythonTimesOutAndIsStopped(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path py = executable(dir.resolve("python"), "#!/bin/sh\nsleep 30\n");
        long start = System.nanoTime();
        EnvironmentCheck c = PythonEnvironment.python(py.toString()).check(Duration.ofMillis(500));
        assertEquals(EnvironmentCheck.Status.TIMEOUT, c.status());
        assertTrue((System.nanoTime() - start) / 1e9 < 15, "stopped promptly");
    }

    @Test
    void wrongCondaEnvironmentIsDiagnosedWithTheKnownOnes(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path args = dir.resolve("args.txt");
        Path conda = executable(dir.resolve("bin").resolve("conda"), "#!/bin/sh\n"
                + "echo \"$@\" >> '" + args + "'\n"
                + "if [ \"$1\" = env ]; then\n"
                + "  echo '{\"envs\": [\"/opt/conda\", \"/opt/conda/envs/trackpose\", \"/opt/conda/envs/cellpose\"]}'\n"
                + "  exit 0\nfi\n"
                + "echo 'EnvironmentLocationNotFound: Not a conda environment: /opt/conda/envs/nope' >&2\nexit 1\n");
        EnvironmentCheck c = PythonEnvironment.conda(conda.toString(), "nope").check(Duration.ofSeconds(10));
        assertEquals(EnvironmentCheck.Status.ENV_NOT_FOUND, c.status(), c.toString());
        assertEquals("conda environment 'nope' does not exist. Environments found: base, trackpose, cellpose. "
                + "Create it, or choose another one.", c.message());
        List<String> calls = Files.readAllLines(args);
        assertEquals(Arrays.asList("run --no-capture-output -n nope python -m trackpose --version", "env list --json"),
                calls);
    }

    @Test
    void condaEnvironmentWithoutPython(@TempDir Path dir) throws Exception {
        assumeFalse(PythonEnvironment.isWindowsHost());
        Path conda = executable(dir.resolve("conda"), "#!/bin/sh\necho 'python: command not found' >&2\nexit 127\n");
        EnvironmentCheck c = PythonEnvironment.conda(conda.toString(), "bare").check(Duration.ofSeconds(10));
        assertEquals(EnvironmentCheck.Status.PYTHON_NOT_FOUND, c.status());
        assertTrue(c.message().contains("has no python"), c.message());
    }

    @Test
    void givenCondaExecutableThatDoesNotExist(@TempDir Path dir) {
        EnvironmentCheck c = PythonEnvironment.conda(dir.resolve("conda").toString(), "tp").check(Duration.ofSeconds(5));
        assertEquals(EnvironmentCheck.Status.CONDA_NOT_FOUND, c.status());
        assertTrue(c.message().endsWith("does not exist"), c.message());
    }
}
