import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from vla_agent.errors import ActionError, ConfigError
from vla_agent.sim import ENV_ID, EnvConfig, SceneSpec, TabletopEnv
from vla_agent.types import DEPTH, IMAGE, PROMPT, SEGMENTATION, STATE, WRIST_IMAGE


@pytest.mark.parametrize(
    "cfg", [EnvConfig(), EnvConfig(wrist_camera=True, segmentation=False, randomize=True, image_size=64)]
)
def test_gymnasium_check_env(cfg):
    env = TabletopEnv(cfg)
    check_env(env)
    env.close()


def test_registered_with_gymnasium():
    env = gym.make(ENV_ID, config=EnvConfig(image_size=64))
    obs, info = env.reset(seed=1)
    assert obs[IMAGE].shape == (64, 64, 3)
    assert info["objects"]
    env.close()


def test_observation_keys_and_types(env):
    obs, info = env.reset(
        seed=0, options={"scene": "red block, blue bowl", "prompt": "pick up the red block"}
    )
    assert obs[IMAGE].dtype == np.uint8 and obs[IMAGE].shape == (128, 128, 3)
    assert obs[DEPTH].dtype == np.float32 and obs[DEPTH].shape == (128, 128)
    assert obs[STATE].shape == (7,)
    assert obs[PROMPT] == "pick up the red block"
    assert set(np.unique(obs[SEGMENTATION])) <= {-1, 0, 1}
    assert info["objects"] == ["red block", "blue bowl"]
    # gripper starts open (~8 cm) and pointing down (roll = pitch = 0 in the tool frame)
    assert obs[STATE][6] == pytest.approx(0.08, abs=0.003)
    assert np.abs(obs[STATE][3:5]).max() < 0.02


def test_wrist_camera_present_when_enabled():
    env = TabletopEnv(EnvConfig(image_size=64, wrist_size=48))
    obs, _ = env.reset(seed=0)
    assert obs[WRIST_IMAGE].shape == (48, 48, 3)
    assert obs[WRIST_IMAGE].std() > 1.0  # not a blank frame
    env.close()


def _rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    images, states = [obs[IMAGE]], [obs[STATE]]
    for a in actions:
        obs, *_ = env.step(a)
        images.append(obs[IMAGE])
        states.append(obs[STATE])
    return np.stack(images), np.stack(states), env.world_state()


def test_seeded_reset_reproduces_scene_and_dynamics():
    rng = np.random.default_rng(0)
    actions = [
        np.r_[rng.uniform(-0.03, 0.03, 3), rng.uniform(-0.1, 0.1, 3), rng.choice([-1.0, 1.0])]
        for _ in range(15)
    ]
    a = TabletopEnv(EnvConfig(randomize=True))
    b = TabletopEnv(EnvConfig(randomize=True))
    ia, sa, wa = _rollout(a, 7, actions)
    _rollout(b, 3, actions)  # a different episode first must not matter
    ib, sb, wb = _rollout(b, 7, actions)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(sa, sb)
    for name in wa.objects:
        np.testing.assert_array_equal(wa.objects[name].position, wb.objects[name].position)
    _, _, wc = _rollout(b, 8, actions)
    assert list(wc.objects) != list(wa.objects) or any(
        not np.allclose(wc.objects[n].position, wa.objects[n].position) for n in wa.objects
    )
    a.close()
    b.close()


@pytest.mark.parametrize(
    "action, match",
    [
        ([np.nan, 0, 0, 0, 0, 0, 1], "NaN/inf at index 0"),
        ([0, 0, 0, 0, 0, np.inf, 1], "NaN/inf at index 5"),
        ([0.5, 0, 0, 0, 0, 0, 1], "dx=0.5000 exceeds"),
        ([0, 0, 0, 0, 0, 0, 3.0], "gripper=3.0000 exceeds"),
        ([0, 0, 0], r"shape \(7,\)"),
        (["a"] * 7, "not numeric"),
    ],
)
def test_bad_actions_raise_and_robot_does_not_move(env, action, match):
    obs, _ = env.reset(seed=0)
    before = env.robot_state()
    with pytest.raises(ActionError, match=match):
        env.step(action)
    np.testing.assert_array_equal(env.robot_state(), before)
    assert env.steps == 0


def test_action_moves_end_effector_in_base_frame(env):
    env.reset(seed=0, options={"scene": "red block"})
    start = env.robot_state()
    for _ in range(5):
        env.step([0.03, -0.02, 0.0, 0, 0, 0, 1])
    delta = env.robot_state()[:3] - start[:3]
    assert delta[0] == pytest.approx(0.15, abs=0.015)
    assert delta[1] == pytest.approx(-0.10, abs=0.015)
    assert abs(delta[2]) < 0.01


def test_gripper_closes_and_opens(env):
    env.reset(seed=0, options={"scene": "red block"})
    for _ in range(4):
        env.step([0, 0, 0, 0, 0, 0, -1])
    assert env.gripper_width() < 0.005
    for _ in range(4):
        env.step([0, 0, 0, 0, 0, 0, 1])
    assert env.gripper_width() > 0.075


def test_given_positions_are_respected(env):
    scene = SceneSpec(objects=({"kind": "block", "color": "red", "position": (0.5, 0.1), "yaw": 0.0},))
    env.reset(seed=0, options={"scene": scene})
    pos = env.world_state().get("red block").position
    assert pos[:2] == pytest.approx([0.5, 0.1], abs=1e-3)


def test_goal_gives_reward_and_termination(env):
    env.reset(seed=0, options={"scene": "red block", "goal": ["at(red block, left)", "hand_empty()"]})
    _, reward, terminated, truncated, _ = env.step(np.zeros(7))
    assert (reward == 1.0) == terminated == env.evaluate("at(red block, left)")
    assert not truncated


def test_unknown_reset_option_raises(env):
    with pytest.raises(ConfigError, match="unknown reset options"):
        env.reset(seed=0, options={"scenery": "red block"})


def test_too_many_large_objects_cannot_be_placed(env):
    with pytest.raises(ConfigError, match="without overlap"):
        env.reset(
            seed=0,
            options={
                "scene": "red bowl, blue bowl, green bowl, yellow bowl, pink bowl, "
                "white bowl, cyan plate, brown plate, orange plate"
            },
        )


def test_truncation_at_max_episode_steps():
    env = TabletopEnv(EnvConfig(max_episode_steps=2, image_size=32))
    env.reset(seed=0)
    assert not env.step(np.zeros(7))[3]
    assert env.step(np.zeros(7))[3]
    env.close()


def test_registered_horizon_and_vectorised_envs():
    """RL libraries read the horizon from the spec; Sync and Async vector envs step the tabletop
    (async without gymnasium's shared memory, which garbles ``Text`` spaces such as the prompt)."""
    from vla_agent.sim import ENV_ID

    assert gym.spec(ENV_ID).max_episode_steps == EnvConfig().max_episode_steps
    small = EnvConfig(image_size=32, wrist_camera=False, segmentation=False)

    def make():
        return gym.make(ENV_ID, config=small)

    for vec in (
        gym.vector.SyncVectorEnv([make, make]),
        gym.vector.AsyncVectorEnv([make, make], shared_memory=False),
    ):
        try:
            obs, _ = vec.reset(seed=[1, 2], options={"prompt": "pick up the red block"})
            assert obs["observation/image"].shape == (2, 32, 32, 3)
            assert list(obs["prompt"]) == ["pick up the red block"] * 2
            obs, reward, terminated, truncated, _ = vec.step(np.zeros((2, 7)))
            assert obs["observation/state"].shape == (2, 7) and not truncated.any()
        finally:
            vec.close()
