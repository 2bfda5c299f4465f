package org.trackpose.trackmate;

import ij.ImagePlus;
import ij.measure.Calibration;

/** What the configuration panel needs to know about the source image: channels, Z slices, calibration. */
final class ImageFacts {

    final int nChannels;
    final int nSlices;
    final double pixelWidth;
    final double pixelDepth;
    final String unit;

    ImageFacts(int nChannels, int nSlices, double pixelWidth, double pixelDepth, String unit) {
        this.nChannels = Math.max(1, nChannels);
        this.nSlices = Math.max(1, nSlices);
        this.pixelWidth = positiveOr1(pixelWidth);
        this.pixelDepth = positiveOr1(pixelDepth);
        this.unit = unit == null || unit.isEmpty() ? "pixel" : unit;
    }

    /** The facts of {@code imp}; a 2D, single-channel, uncalibrated image when there is none. */
    static ImageFacts of(ImagePlus imp) {
        if (imp == null) {
            return new ImageFacts(1, 1, 1, 1, "pixel");
        }
        Calibration cal = imp.getCalibration();
        return new ImageFacts(imp.getNChannels(), imp.getNSlices(), cal.pixelWidth, cal.pixelDepth, cal.getUnit());
    }

    boolean is3D() {
        return nSlices > 1;
    }

    /** Z / XY voxel size ratio from the calibration (what ANISOTROPY = 0 means). */
    double anisotropy() {
        return pixelDepth / pixelWidth;
    }

    private static double positiveOr1(double d) {
        return d > 0 && !Double.isInfinite(d) && !Double.isNaN(d) ? d : 1.0;
    }
}
