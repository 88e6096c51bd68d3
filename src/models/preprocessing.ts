/**
 * How a model expects its 0…255 RGB input scaled, declared by the model (never by the caller):
 * - `unit` — x/255;
 * - `symmetric` — x/127.5 − 1 (MobileNet, Inception, Keras "tf" mode);
 * - `caffe` — RGB→BGR, minus the ImageNet BGR mean (VGG, ResNet50, Caffe ports);
 * - `imagenet` — x/255, minus ImageNet mean, divided by its std (torchvision, Keras "torch" mode);
 * - `raw` — 0…255 unchanged (EfficientNet in Keras normalises inside the model).
 */
export type Preprocessing = 'unit' | 'symmetric' | 'caffe' | 'imagenet' | 'raw';

export const PREPROCESSINGS: readonly Preprocessing[] = ['unit', 'symmetric', 'caffe', 'imagenet', 'raw'];

/** Per channel (in output channel order) `out = in * scale + offset`, and whether channels are reversed. */
export function affineOf(preprocessing: Preprocessing): { scale: number[]; offset: number[]; bgr: boolean } {
  switch (preprocessing) {
    case 'unit':
      return { scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0], bgr: false };
    case 'symmetric':
      return { scale: [1 / 127.5, 1 / 127.5, 1 / 127.5], offset: [-1, -1, -1], bgr: false };
    case 'caffe':
      return { scale: [1, 1, 1], offset: [-103.939, -116.779, -123.68], bgr: true };
    case 'imagenet': {
      const mean = [0.485, 0.456, 0.406];
      const std = [0.229, 0.224, 0.225];
      return { scale: std.map((s) => 1 / (255 * s)), offset: mean.map((m, i) => -m / std[i]!), bgr: false };
    }
    case 'raw':
      return { scale: [1, 1, 1], offset: [0, 0, 0], bgr: false };
  }
}
