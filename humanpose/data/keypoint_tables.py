"""Joint tables of the whole-body, hand and face key-point sets, transcribed from mmpose's
metainfo (configs/_base_/datasets/{coco_wholebody,coco_wholebody_hand,coco_wholebody_face,
lapa}.py): names, 0-based flip pairs, 1-based skeletons and OKS sigmas (pycocotools' scale).
"""

# ruff: noqa: E501

WHOLEBODY_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle', 'left_big_toe',
    'left_small_toe', 'left_heel', 'right_big_toe', 'right_small_toe', 'right_heel',
    'face-0', 'face-1', 'face-2', 'face-3', 'face-4', 'face-5', 'face-6', 'face-7',
    'face-8', 'face-9', 'face-10', 'face-11', 'face-12', 'face-13', 'face-14', 'face-15',
    'face-16', 'face-17', 'face-18', 'face-19', 'face-20', 'face-21', 'face-22', 'face-23',
    'face-24', 'face-25', 'face-26', 'face-27', 'face-28', 'face-29', 'face-30', 'face-31',
    'face-32', 'face-33', 'face-34', 'face-35', 'face-36', 'face-37', 'face-38', 'face-39',
    'face-40', 'face-41', 'face-42', 'face-43', 'face-44', 'face-45', 'face-46', 'face-47',
    'face-48', 'face-49', 'face-50', 'face-51', 'face-52', 'face-53', 'face-54', 'face-55',
    'face-56', 'face-57', 'face-58', 'face-59', 'face-60', 'face-61', 'face-62', 'face-63',
    'face-64', 'face-65', 'face-66', 'face-67', 'left_hand_root', 'left_thumb1',
    'left_thumb2', 'left_thumb3', 'left_thumb4', 'left_forefinger1', 'left_forefinger2',
    'left_forefinger3', 'left_forefinger4', 'left_middle_finger1', 'left_middle_finger2',
    'left_middle_finger3', 'left_middle_finger4', 'left_ring_finger1', 'left_ring_finger2',
    'left_ring_finger3', 'left_ring_finger4', 'left_pinky_finger1', 'left_pinky_finger2',
    'left_pinky_finger3', 'left_pinky_finger4', 'right_hand_root', 'right_thumb1',
    'right_thumb2', 'right_thumb3', 'right_thumb4', 'right_forefinger1',
    'right_forefinger2', 'right_forefinger3', 'right_forefinger4', 'right_middle_finger1',
    'right_middle_finger2', 'right_middle_finger3', 'right_middle_finger4',
    'right_ring_finger1', 'right_ring_finger2', 'right_ring_finger3', 'right_ring_finger4',
    'right_pinky_finger1', 'right_pinky_finger2', 'right_pinky_finger3',
    'right_pinky_finger4'
)
WHOLEBODY_FLIP_PAIRS = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 20), (18,
    21), (19, 22), (23, 39), (24, 38), (25, 37), (26, 36), (27, 35), (28, 34), (29, 33),
    (30, 32), (40, 49), (41, 48), (42, 47), (43, 46), (44, 45), (54, 58), (55, 57), (59,
    68), (60, 67), (61, 66), (62, 65), (63, 70), (64, 69), (71, 77), (72, 76), (73, 75),
    (78, 82), (79, 81), (83, 87), (84, 86), (88, 90), (91, 112), (92, 113), (93, 114), (94,
    115), (95, 116), (96, 117), (97, 118), (98, 119), (99, 120), (100, 121), (101, 122),
    (102, 123), (103, 124), (104, 125), (105, 126), (106, 127), (107, 128), (108, 129),
    (109, 130), (110, 131), (111, 132)
)
WHOLEBODY_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7,
    9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7), (16, 18),
    (16, 19), (16, 20), (17, 21), (17, 22), (17, 23), (92, 93), (93, 94), (94, 95), (95,
    96), (92, 97), (97, 98), (98, 99), (99, 100), (92, 101), (101, 102), (102, 103), (103,
    104), (92, 105), (105, 106), (106, 107), (107, 108), (92, 109), (109, 110), (110, 111),
    (111, 112), (113, 114), (114, 115), (115, 116), (116, 117), (113, 118), (118, 119),
    (119, 120), (120, 121), (113, 122), (122, 123), (123, 124), (124, 125), (113, 126),
    (126, 127), (127, 128), (128, 129), (113, 130), (130, 131), (131, 132), (132, 133)
)
WHOLEBODY_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107,
    0.107, 0.087, 0.087, 0.089, 0.089, 0.068, 0.066, 0.066, 0.092, 0.094, 0.094, 0.042,
    0.043, 0.044, 0.043, 0.04, 0.035, 0.031, 0.025, 0.02, 0.023, 0.029, 0.032, 0.037, 0.038,
    0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013,
    0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.01, 0.017, 0.011,
    0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.01, 0.034, 0.008, 0.008,
    0.009, 0.008, 0.008, 0.007, 0.01, 0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008,
    0.011, 0.008, 0.008, 0.008, 0.01, 0.008, 0.029, 0.022, 0.035, 0.037, 0.047, 0.026,
    0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02,
    0.019, 0.022, 0.031, 0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035,
    0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031
)

HAND21_NAMES = (
    'wrist', 'thumb1', 'thumb2', 'thumb3', 'thumb4', 'forefinger1', 'forefinger2',
    'forefinger3', 'forefinger4', 'middle_finger1', 'middle_finger2', 'middle_finger3',
    'middle_finger4', 'ring_finger1', 'ring_finger2', 'ring_finger3', 'ring_finger4',
    'pinky_finger1', 'pinky_finger2', 'pinky_finger3', 'pinky_finger4'
)
HAND21_FLIP_PAIRS = ()
HAND21_SKELETON = (
    (1, 2), (2, 3), (3, 4), (4, 5), (1, 6), (6, 7), (7, 8), (8, 9), (1, 10), (10, 11), (11,
    12), (12, 13), (1, 14), (14, 15), (15, 16), (16, 17), (1, 18), (18, 19), (19, 20), (20,
    21)
)
HAND21_SIGMAS = (
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022,
    0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031
)

FACE68_NAMES = (
    'face-0', 'face-1', 'face-2', 'face-3', 'face-4', 'face-5', 'face-6', 'face-7',
    'face-8', 'face-9', 'face-10', 'face-11', 'face-12', 'face-13', 'face-14', 'face-15',
    'face-16', 'face-17', 'face-18', 'face-19', 'face-20', 'face-21', 'face-22', 'face-23',
    'face-24', 'face-25', 'face-26', 'face-27', 'face-28', 'face-29', 'face-30', 'face-31',
    'face-32', 'face-33', 'face-34', 'face-35', 'face-36', 'face-37', 'face-38', 'face-39',
    'face-40', 'face-41', 'face-42', 'face-43', 'face-44', 'face-45', 'face-46', 'face-47',
    'face-48', 'face-49', 'face-50', 'face-51', 'face-52', 'face-53', 'face-54', 'face-55',
    'face-56', 'face-57', 'face-58', 'face-59', 'face-60', 'face-61', 'face-62', 'face-63',
    'face-64', 'face-65', 'face-66', 'face-67'
)
FACE68_FLIP_PAIRS = (
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9), (17, 26), (18,
    25), (19, 24), (20, 23), (21, 22), (31, 35), (32, 34), (36, 45), (37, 44), (38, 43),
    (39, 42), (40, 47), (41, 46), (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60,
    64), (61, 63), (65, 67)
)
FACE68_SKELETON = ()
FACE68_SIGMAS = (
    0.042, 0.043, 0.044, 0.043, 0.04, 0.035, 0.031, 0.025, 0.02, 0.023, 0.029, 0.032, 0.037,
    0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011,
    0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.01, 0.017,
    0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.01, 0.034, 0.008,
    0.008, 0.009, 0.008, 0.008, 0.007, 0.01, 0.008, 0.009, 0.009, 0.009, 0.007, 0.007,
    0.008, 0.011, 0.008, 0.008, 0.008, 0.01, 0.008
)

FACE106_NAMES = (
    'kpt-0', 'kpt-1', 'kpt-2', 'kpt-3', 'kpt-4', 'kpt-5', 'kpt-6', 'kpt-7', 'kpt-8',
    'kpt-9', 'kpt-10', 'kpt-11', 'kpt-12', 'kpt-13', 'kpt-14', 'kpt-15', 'kpt-16', 'kpt-17',
    'kpt-18', 'kpt-19', 'kpt-20', 'kpt-21', 'kpt-22', 'kpt-23', 'kpt-24', 'kpt-25',
    'kpt-26', 'kpt-27', 'kpt-28', 'kpt-29', 'kpt-30', 'kpt-31', 'kpt-32', 'kpt-33',
    'kpt-34', 'kpt-35', 'kpt-36', 'kpt-37', 'kpt-38', 'kpt-39', 'kpt-40', 'kpt-41',
    'kpt-42', 'kpt-43', 'kpt-44', 'kpt-45', 'kpt-46', 'kpt-47', 'kpt-48', 'kpt-49',
    'kpt-50', 'kpt-51', 'kpt-52', 'kpt-53', 'kpt-54', 'kpt-55', 'kpt-56', 'kpt-57',
    'kpt-58', 'kpt-59', 'kpt-60', 'kpt-61', 'kpt-62', 'kpt-63', 'kpt-64', 'kpt-65',
    'kpt-66', 'kpt-67', 'kpt-68', 'kpt-69', 'kpt-70', 'kpt-71', 'kpt-72', 'kpt-73',
    'kpt-74', 'kpt-75', 'kpt-76', 'kpt-77', 'kpt-78', 'kpt-79', 'kpt-80', 'kpt-81',
    'kpt-82', 'kpt-83', 'kpt-84', 'kpt-85', 'kpt-86', 'kpt-87', 'kpt-88', 'kpt-89',
    'kpt-90', 'kpt-91', 'kpt-92', 'kpt-93', 'kpt-94', 'kpt-95', 'kpt-96', 'kpt-97',
    'kpt-98', 'kpt-99', 'kpt-100', 'kpt-101', 'kpt-102', 'kpt-103', 'kpt-104', 'kpt-105'
)
FACE106_FLIP_PAIRS = (
    (0, 32), (1, 31), (2, 30), (3, 29), (4, 28), (5, 27), (6, 26), (7, 25), (8, 24), (9,
    23), (10, 22), (11, 21), (12, 20), (13, 19), (14, 18), (15, 17), (33, 46), (34, 45),
    (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47), (55, 65), (56,
    64), (57, 63), (58, 62), (59, 61), (66, 79), (67, 78), (68, 77), (69, 76), (70, 75),
    (71, 82), (72, 81), (73, 80), (74, 83), (84, 90), (85, 89), (86, 88), (91, 95), (92,
    94), (96, 100), (97, 99), (101, 103), (104, 105)
)
FACE106_SKELETON = ()
FACE106_SIGMAS = ()
