"""What each robot target's HOW-TO.txt says, and the code that goes with it. The README's "Put it on
the robot" section carries the same `HOW_TO` texts word for word (tests/storage/test_targets.py).

Text here is plain and reads the same as Markdown. The Java snippets are documented, not compiled
here: FieldLens has no Android or WPILib toolchain.
"""

from __future__ import annotations

from storage.model_folder import EDGE_TPU_MODEL, INT8, LABELS

LIMELIGHT = f"""\
Limelight 3A, 3G or 4 (FTC and FRC)
1. Connect to the Limelight's web interface (http://limelight.local:5801, or the address your
   robot gives it) and pick a pipeline.
2. Set the pipeline type to Neural Detector.
3. Upload {INT8} as the detector model and {LABELS} as its labels.
4. Set the detector engine to CPU (the 8-bit model runs on the Limelight's own processor; Coral off).
   On a Limelight 2 or 3 with a Google Coral, upload {EDGE_TPU_MODEL} instead and pick the
   Coral engine (only in zips made where edgetpu_compiler was installed; see below).
5. Set the confidence threshold to the robot threshold listed above, and check the detections on
   the live view before a match.
The model takes the whole camera frame, squeezed to its square input; keep the objects at the size
they had in the training photos."""

FTC = f"""\
FTC (SDK 10 and later)
The FTC SDK no longer includes TensorFlow. Two ways to run this model:
A. Through a Limelight 3A: follow the Limelight steps (the model and labels are in
   sdcard/FIRST/tflitemodels/), then read detections in your OpMode:
       Limelight3A limelight = hardwareMap.get(Limelight3A.class, "limelight");
       limelight.pipelineSwitch(0);
       limelight.start();
       LLResult result = limelight.getLatestResult();
       for (LLResultTypes.DetectorResult d : result.getDetectorResults()) {{
           telemetry.addData(d.getClassName(), "%.2f at %.1f deg", d.getConfidence(), d.getTargetXDegrees());
       }}
B. In your own code, with the TensorFlow Lite Java API:
   1. Copy the FIRST folder from sdcard/ to the Robot Controller's /sdcard/ (adb push sdcard/FIRST
      /sdcard/), so the model is /sdcard/FIRST/tflitemodels/{INT8}.
   2. Copy TeamCode/ into your project; add to TeamCode/build.gradle:
          implementation 'org.tensorflow:tensorflow-lite:2.14.0'
   3. FieldLensProcessor is a VisionProcessor: add it to your VisionPortal and read
      getDetections() in your OpMode. It keeps each label at the model's own threshold (the values
      listed above, written into the file)."""

PI = f"""\
Raspberry Pi or another Linux co-processor
1. Unzip this in the home folder, so the files are in ~/fieldlens/.
2. Install the edge runtime (numpy, Pillow and the LiteRT interpreter; OpenCV for USB cameras):
       python3 -m venv ~/fieldlens/venv
       ~/fieldlens/venv/bin/pip install 'fieldlens[edge,edge-camera]'
3. Try it on camera 0 and watch http://<the Pi>:8080/ from a laptop:
       ~/fieldlens/venv/bin/fieldlens-edge run --model ~/fieldlens/{INT8} --source 0 --serve 8080
   It uses the model's own thresholds; --threshold or --label-threshold LABEL=T change them.
4. Start it at boot with the systemd unit (edit User= and the paths if you are not the user pi):
       sudo cp ~/fieldlens/fieldlens-edge.service /etc/systemd/system/
       sudo systemctl enable --now fieldlens-edge
       journalctl -u fieldlens-edge -f
To update the model over the network instead, make a token with /model token create and run
fieldlens-edge pull --server <FieldLens address> --token <token> --dest ~/fieldlens/models; then use
--model ~/fieldlens/models/current/{INT8} (fieldlens-edge rollback goes back one model)."""

FRC = """\
FRC: a co-processor publishing to NetworkTables
1. Set up the co-processor as for a Raspberry Pi (unzip in the home folder, install, try it).
2. In fieldlens-edge.service, replace TEAM with your team number, so that fieldlens-edge finds the
   robot's NetworkTables server, then install and start the unit as for a Pi.
3. Table /FieldLens carries each frame's detections: count (int), labels (string[]), scores
   (double[]), boxes (double[]: xmin, ymin, xmax, ymax from 0 to 1, four per detection, in the
   order of labels), latency_ms (double), frame (int), json (string).
4. Copy FieldLensVision.java into your robot project (WPILib 2024 or later) and call
   targets() from a command or subsystem; each target has its label, score, box and centre.
On a Limelight, use the Limelight zip instead and read the Limelight's own NetworkTables entries."""

HOW_TO = {"limelight": LIMELIGHT, "ftc": FTC, "pi": PI, "frc": FRC}

EDGE_TPU_MISSING = (
    "No Edge TPU model in this zip: edgetpu_compiler was not installed where this zip was made. Compile\n"
    f"one yourself on a Linux x86-64 machine: edgetpu_compiler {INT8}."
)

SYSTEMD_UNIT = f"""\
[Unit]
Description=FieldLens object detection
After=network-online.target
Wants=network-online.target

[Service]
User=pi
WorkingDirectory=/home/pi/fieldlens
ExecStart=/home/pi/fieldlens/venv/bin/fieldlens-edge run --model /home/pi/fieldlens/{INT8} \\
    --source 0 --serve 8080{{extra}}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

FTC_PROCESSOR = """\
// FieldLens model {model_id}: a VisionProcessor that runs the model with the TensorFlow Lite Java API.
// Documented, not compiled by FieldLens. Needs in TeamCode/build.gradle:
//     implementation 'org.tensorflow:tensorflow-lite:2.14.0'
package org.firstinspires.ftc.teamcode;

import android.graphics.Canvas;

import org.firstinspires.ftc.robotcore.internal.camera.calibration.CameraCalibration;
import org.firstinspires.ftc.vision.VisionProcessor;
import org.opencv.core.Mat;
import org.opencv.core.Size;
import org.opencv.imgproc.Imgproc;
import org.tensorflow.lite.Interpreter;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class FieldLensProcessor implements VisionProcessor {{
    public static final String MODEL = "{model_path}";
    public static final int SIZE = {input_size};  // the model's square input, in pixels
    public static final String[] LABELS = {{{labels}}};
    // The model's own thresholds (highest F1 on its validation images); a label not listed uses ROBOT.
    public static final double ROBOT = {overall};
    public static final Map<String, Double> THRESHOLDS = new HashMap<>();
    static {{
{label_thresholds}    }}

    public static class Detection {{
        public final String label;
        public final double score;
        public final double left, top, right, bottom;  // 0..1 of the frame
        Detection(String label, double score, double left, double top, double right, double bottom) {{
            this.label = label; this.score = score;
            this.left = left; this.top = top; this.right = right; this.bottom = bottom;
        }}
    }}

    private Interpreter interpreter;
    private final ByteBuffer input =
        ByteBuffer.allocateDirect(SIZE * SIZE * 3).order(ByteOrder.nativeOrder());
    private final byte[] pixels = new byte[SIZE * SIZE * 3];
    private final Mat rgb = new Mat();
    private final Mat resized = new Mat();
    private volatile List<Detection> latest = new ArrayList<>();

    @Override
    public void init(int width, int height, CameraCalibration calibration) {{
        interpreter = new Interpreter(new File(MODEL));
    }}

    @Override
    public Object processFrame(Mat frame, long captureTimeNanos) {{
        if (frame.channels() == 4) {{
            Imgproc.cvtColor(frame, rgb, Imgproc.COLOR_RGBA2RGB);
        }} else {{
            frame.copyTo(rgb);
        }}
        Imgproc.resize(rgb, resized, new Size(SIZE, SIZE), 0, 0, Imgproc.INTER_LINEAR);
        resized.get(0, 0, pixels);
        input.rewind();
        input.put(pixels);
        input.rewind();
        int k = interpreter.getOutputTensor(0).shape()[1];
        float[][][] boxes = new float[1][k][4];  // ymin, xmin, ymax, xmax
        float[][] classes = new float[1][k];
        float[][] scores = new float[1][k];
        float[] count = new float[1];
        Map<Integer, Object> outputs = new HashMap<>();
        outputs.put(0, boxes);
        outputs.put(1, classes);
        outputs.put(2, scores);
        outputs.put(3, count);
        interpreter.runForMultipleInputsOutputs(new Object[] {{input}}, outputs);
        List<Detection> found = new ArrayList<>();
        for (int i = 0; i < Math.min((int) count[0], k); i++) {{
            int c = (int) classes[0][i];
            String label = c >= 0 && c < LABELS.length ? LABELS[c] : "class " + c;
            double threshold = THRESHOLDS.containsKey(label) ? THRESHOLDS.get(label) : ROBOT;
            if (scores[0][i] >= threshold) {{
                float[] b = boxes[0][i];
                found.add(new Detection(label, scores[0][i], b[1], b[0], b[3], b[2]));
            }}
        }}
        latest = found;
        return found;
    }}

    @Override
    public void onDrawFrame(Canvas canvas, int onscreenWidth, int onscreenHeight,
                            float scaleBmpPxToCanvasPx, float scaleCanvasDensity, Object userContext) {{
    }}

    /** The last frame's detections (call from your OpMode's loop). */
    public List<Detection> getDetections() {{
        return latest;
    }}
}}
"""

FRC_VISION = """\
// FieldLens: read the detections fieldlens-edge publishes to NetworkTables (table /FieldLens).
// Documented, not compiled by FieldLens. WPILib 2024 or later.
package frc.robot;

import edu.wpi.first.networktables.DoubleArraySubscriber;
import edu.wpi.first.networktables.NetworkTable;
import edu.wpi.first.networktables.NetworkTableInstance;
import edu.wpi.first.networktables.StringArraySubscriber;

import java.util.ArrayList;
import java.util.List;

public class FieldLensVision {
    /** One detection: box corners from 0 to 1 of the camera frame. */
    public record Target(String label, double score, double xmin, double ymin, double xmax, double ymax) {
        public double centerX() { return (xmin + xmax) / 2; }
        public double centerY() { return (ymin + ymax) / 2; }
    }

    private final NetworkTable table = NetworkTableInstance.getDefault().getTable("FieldLens");
    private final StringArraySubscriber labels = table.getStringArrayTopic("labels").subscribe(new String[0]);
    private final DoubleArraySubscriber scores = table.getDoubleArrayTopic("scores").subscribe(new double[0]);
    private final DoubleArraySubscriber boxes = table.getDoubleArrayTopic("boxes").subscribe(new double[0]);

    /** The latest frame's detections (already filtered by the model's thresholds on the co-processor). */
    public List<Target> targets() {
        String[] l = labels.get();
        double[] s = scores.get();
        double[] b = boxes.get();
        List<Target> out = new ArrayList<>();
        for (int i = 0; i < l.length && i < s.length && 4 * i + 3 < b.length; i++) {
            out.add(new Target(l[i], s[i], b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]));
        }
        return out;
    }
}
"""
