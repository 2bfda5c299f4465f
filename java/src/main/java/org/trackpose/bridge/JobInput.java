package org.trackpose.bridge;

import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;
import ij.process.ByteProcessor;
import ij.process.ColorProcessor;
import ij.process.ImageProcessor;
import java.awt.Rectangle;
import java.util.Arrays;

/**
 * The image a job sends (as input.tif) and where it came from: the frames' numbers in the caller's movie and the
 * offset of the crop, so that results can be put back in the caller's coordinates.
 *
 * <p>The image is an ImageJ hyperstack whose T axis holds exactly the frames sent, in order; Z and C are kept
 * whole. RGB images become 3 channels (red, green, blue = channels 1, 2, 3).
 */
public final class JobInput {

    private final ImagePlus image;
    private final int[] frames;
    private final int offsetX;
    private final int offsetY;

    private JobInput(ImagePlus image, int[] frames, int offsetX, int offsetY) {
        this.image = image;
        this.frames = frames.clone();
        this.offsetX = offsetX;
        this.offsetY = offsetY;
    }

    /**
     * Crops {@code source} to {@code roi} and keeps the given frames.
     *
     * @param source a hyperstack (any of 8/16/32-bit or RGB)
     * @param roi    the region to process, in pixels; null = whole image; clipped to the image
     * @param frames 0-based frame numbers of {@code source}; null = all frames
     * @throws IllegalArgumentException for a frame that does not exist or an ROI outside the image
     */
    public static JobInput crop(ImagePlus source, Rectangle roi, int[] frames) {
        int nC = source.getNChannels();
        int nZ = source.getNSlices();
        int nT = source.getNFrames();
        if (frames == null) {
            frames = new int[nT];
            for (int t = 0; t < nT; t++) {
                frames[t] = t;
            }
        }
        if (frames.length == 0) {
            throw new IllegalArgumentException("no frames to process");
        }
        for (int t : frames) {
            if (t < 0 || t >= nT) {
                throw new IllegalArgumentException("frame " + t + " does not exist: the image has " + nT
                        + " frame" + (nT == 1 ? "" : "s") + " (0.." + (nT - 1) + ")");
            }
        }
        Rectangle whole = new Rectangle(0, 0, source.getWidth(), source.getHeight());
        Rectangle r = roi == null ? whole : roi.intersection(whole);
        if (r.isEmpty()) {
            throw new IllegalArgumentException("the region " + roi + " lies outside the " + source.getWidth() + "x"
                    + source.getHeight() + " image");
        }
        boolean rgb = source.getType() == ImagePlus.COLOR_RGB;
        int outC = rgb ? 3 * nC : nC;
        ImageStack in = source.getStack();
        ImageStack out = new ImageStack(r.width, r.height);
        for (int t : frames) {
            for (int z = 0; z < nZ; z++) {
                for (int c = 0; c < nC; c++) {
                    ImageProcessor ip = in.getProcessor(source.getStackIndex(c + 1, z + 1, t + 1));
                    ip.setRoi(r);
                    ImageProcessor cropped = ip.crop();
                    if (rgb) {
                        int n = r.width * r.height;
                        byte[] red = new byte[n];
                        byte[] green = new byte[n];
                        byte[] blue = new byte[n];
                        ((ColorProcessor) cropped).getRGB(red, green, blue);
                        out.addSlice(new ByteProcessor(r.width, r.height, red));
                        out.addSlice(new ByteProcessor(r.width, r.height, green));
                        out.addSlice(new ByteProcessor(r.width, r.height, blue));
                    } else {
                        out.addSlice(cropped);
                    }
                }
            }
        }
        ImagePlus imp = new ImagePlus("input", out);
        imp.setDimensions(outC, nZ, frames.length);
        if (imp.getStackSize() > 1) {
            imp.setOpenAsHyperStack(true);
        }
        Calibration cal = source.getCalibration().copy();
        cal.xOrigin = 0;
        cal.yOrigin = 0;
        imp.setCalibration(cal);
        return new JobInput(imp, frames, r.x, r.y);
    }

    /**
     * An image the caller prepared itself (a hyperstack whose T axis holds {@code frames}, in order), taken from
     * the caller's image at ({@code offsetX}, {@code offsetY}).
     */
    public static JobInput of(ImagePlus prepared, int[] frames, int offsetX, int offsetY) {
        if (frames.length != prepared.getNFrames()) {
            throw new IllegalArgumentException(frames.length + " frame numbers for an image with "
                    + prepared.getNFrames() + " frames");
        }
        return new JobInput(prepared, frames, offsetX, offsetY);
    }

    public ImagePlus image() {
        return image;
    }

    /** The caller's frame numbers, in the order of T in the image. */
    public int[] frames() {
        return frames.clone();
    }

    public int offsetX() {
        return offsetX;
    }

    public int offsetY() {
        return offsetY;
    }

    public int width() {
        return image.getWidth();
    }

    public int height() {
        return image.getHeight();
    }

    public int nChannels() {
        return image.getNChannels();
    }

    public int nSlices() {
        return image.getNSlices();
    }

    public Calibration calibration() {
        return image.getCalibration();
    }

    @Override
    public String toString() {
        return "JobInput[" + width() + "x" + height() + ", C=" + nChannels() + ", Z=" + nSlices() + ", frames="
                + Arrays.toString(frames) + ", offset=(" + offsetX + "," + offsetY + ")]";
    }
}
