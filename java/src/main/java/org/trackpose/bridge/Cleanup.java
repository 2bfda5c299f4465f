package org.trackpose.bridge;

import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Last-resort cleanup when the JVM exits (Fiji closed mid-run): engine processes still running are stopped with
 * their children and job folders not yet removed are deleted. Normal runs clean up on their own; this only catches
 * what an abrupt exit leaves.
 */
final class Cleanup {

    private static final Set<Process> PROCESSES = ConcurrentHashMap.newKeySet();
    private static final Set<Path> FOLDERS = ConcurrentHashMap.newKeySet();

    static {
        try {
            Runtime.getRuntime().addShutdownHook(new Thread(Cleanup::runNow, "trackpose-cleanup"));
        } catch (IllegalStateException | SecurityException ignored) {
            // JVM already shutting down, or not allowed: nothing more we can do
        }
    }

    private Cleanup() {
    }

    static void register(Process p) {
        PROCESSES.add(p);
    }

    static void unregister(Process p) {
        PROCESSES.remove(p);
    }

    static void register(Path folder) {
        FOLDERS.add(folder);
    }

    static void unregister(Path folder) {
        FOLDERS.remove(folder);
    }

    private static void runNow() {
        for (Process p : PROCESSES) {
            ProcessTree.kill(p, java.time.Duration.ofMillis(500));
        }
        for (Path f : FOLDERS) {
            JobFolder.deleteRecursively(f);
        }
    }
}
